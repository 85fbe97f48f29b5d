// Smoke test of the benchmark itself (never the benchmark as such): the real `bench/run.js`
// against Parley alone at tiny sizes, over real TLS sockets. It must print the side-by-side
// table and append one JSON line per scenario with sane, non-zero figures.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RUN = fileURLToPath(new URL('../../bench/run.js', import.meta.url));

interface Line {
  date: string;
  commit: string;
  machine: { cpus: number; node: string };
  server: string;
  repeat: number;
  scenario: string;
  result: Record<string, unknown> & { error?: string };
}

interface Cpu {
  serverPct: number;
  clientPct: number;
  bound: string;
}

function runBench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [RUN, ...args], { timeout: 240_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

const expectCpu = (cpu: Cpu): void => {
  expect(cpu.serverPct, 'server CPU').to.be.greaterThan(0);
  expect(cpu.clientPct, 'load generator CPU').to.be.greaterThan(0);
  expect(['server', 'loadgen', 'machine']).to.include(cpu.bound);
};

describe('bench (smoke: Parley, tiny sizes)', function () {
  this.timeout(300_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'parley-bench-spec-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('prints the table and appends one sane JSON line per scenario', async () => {
    const results = join(dir, 'results.jsonl');
    const { code, stdout, stderr } = await runBench([
      '--target', 'parley',
      '--idle-steps', '10,20',
      '--logins', '20',
      '--login-concurrency', '5',
      '--users', '10',
      '--duration', '1',
      '--muc-occupants', '6',
      '--muc-senders', '2',
      '--open-rate', '50',
      '--results', results,
    ]);
    expect(code, `bench exited with ${code}:\n${stderr}\n${stdout}`).to.equal(0);
    for (const row of ['Parley', 'idle KiB/session @ 10', 'idle KiB/session @ 20', 'logins/s (20 @ 5)', '1:1 msgs/s closed (10 x 2)', '1:1 open loop p99 ms', '1:1 open @ 50/s p99 ms', 'MUC deliveries/s (6/2)', 'errors (all runs)']) {
      expect(stdout).to.include(row);
    }

    const lines = readFileSync(results, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);
    expect(lines.map((l) => l.scenario)).to.deep.equal(['idle', 'logins', 'messages', 'muc']);
    for (const l of lines) {
      expect(l.server).to.equal('parley');
      expect(l.repeat).to.equal(1);
      expect(l.commit).to.match(/^[0-9a-f]{40}$/);
      expect(Date.parse(l.date)).to.be.greaterThan(0);
      expect(l.machine.cpus).to.be.greaterThan(0);
      expect(l.result.error, `${l.scenario}: ${l.result.error}`).to.equal(undefined);
    }
    const [idle, logins, messages, muc] = lines.map((l) => l.result) as [
      { rssBeforeKiB: number; steps: Array<{ sessions: number; rssKiB: number; kibPerSession: number }> },
      { logins: number; perSecond: number; errors: number; cpu: Cpu },
      { closed: { delivered: number; perSecond: number; p50Ms: number; cpu: Cpu }; open: { delivered: number; p50Ms: number; p99Ms: number; cpu: Cpu }; openRate: number; common: { rate: number; result: { delivered: number; perSecond: number; p50Ms: number; p99Ms: number; cpu: Cpu } }; errors: number },
      { deliveries: number; deliveriesPerSecond: number; p99Ms: number; errors: number; cpu: Cpu },
    ];
    expect(idle.rssBeforeKiB).to.be.greaterThan(1024);
    expect(idle.steps.map((s) => s.sessions)).to.deep.equal([10, 20]);
    for (const s of idle.steps) expect(s.rssKiB).to.be.greaterThan(idle.rssBeforeKiB / 2);

    expect(logins.logins).to.equal(20);
    expect(logins.errors).to.equal(0);
    expect(logins.perSecond).to.be.greaterThan(0);
    expectCpu(logins.cpu);

    expect(messages.errors).to.equal(0);
    expect(messages.closed.delivered).to.be.greaterThan(0);
    expect(messages.closed.p50Ms).to.be.greaterThan(0);
    expectCpu(messages.closed.cpu);
    expect(messages.openRate).to.be.closeTo(messages.closed.perSecond / 2, 1);
    expect(messages.open.delivered).to.be.greaterThan(0);
    expect(messages.open.p99Ms).to.be.at.least(messages.open.p50Ms);
    // The open loop at the rate every server gets: about 50 msgs/s for its second.
    expect(messages.common.rate).to.equal(50);
    expect(messages.common.result.perSecond).to.be.within(30, 70);
    expect(messages.common.result.p99Ms).to.be.at.least(messages.common.result.p50Ms);
    expectCpu(messages.common.result.cpu);

    expect(muc.errors).to.equal(0);
    // Every message fans out to all 6 occupants.
    expect(muc.deliveries).to.be.greaterThan(6);
    expect(muc.deliveriesPerSecond).to.be.greaterThan(0);
    expectCpu(muc.cpu);

    // --report reprints the table from the JSON lines alone, starting nothing.
    const again = await runBench(['--report', results]);
    expect(again.code, again.stderr).to.equal(0);
    const row = (text: string): string | undefined => text.split('\n').find((l) => l.startsWith('logins/s'));
    expect(row(again.stdout)).to.equal(row(stdout));
  });
});
