// The bench's command line: --compare, --quick, --parley-nodes / --compare-nodes.
import { expect } from 'chai';
import { OptionsError, parseOptions, type BenchOptions } from '../../bench/options.js';
import { boundOf } from '../../bench/proc.js';
import { benchModules } from '../../bench/server-parley.js';

const parse = (...argv: string[]): BenchOptions => parseOptions(argv, {}) as BenchOptions;

describe('bench/options', () => {
  it('runs Parley alone once by default, every installed server twice with --compare', () => {
    const plain = parse();
    expect(plain.targets).to.deep.equal(['parley']);
    expect(plain.repeats).to.equal(1);
    expect(plain.idleSteps).to.deep.equal([1000, 5000, 10000]);
    expect(plain.logins).to.equal(2000);
    expect(plain.loginConcurrency).to.equal(100);
    expect(plain.users).to.equal(1000);
    expect(plain.inFlight).to.equal(2);
    expect(plain.openRate).to.equal(1000);
    expect(parse('--open-rate', '0').openRate).to.equal(0);
    expect([plain.mucOccupants, plain.mucSenders, plain.mucWindow]).to.deep.equal([100, 10, 1]);
    expect(plain.phases).to.deep.equal(['idle', 'logins', 'messages', 'muc']);
    const compare = parse('--compare');
    expect(compare.targets).to.equal('all');
    expect(compare.repeats).to.equal(2);
  });

  it('runs Parley with the others\' feature set, and beside it with its defaults under --compare', () => {
    expect(parse().parleyModules).to.deep.equal(['same']);
    expect(parse('--compare').parleyModules).to.deep.equal(['same', 'all']);
    expect(parse('--parley-modules', 'all').parleyModules).to.deep.equal(['all']);
    expect(parse('--compare', '--parley-modules', 'same').parleyModules).to.deep.equal(['same']);
    expect(() => parse('--parley-modules', 'most')).to.throw(OptionsError, /--parley-modules/);
  });

  it('turns off exactly the default modules the other servers do not run', () => {
    const same = benchModules('same');
    for (const m of ['mam', 'carbons', 'offline', 'push', 'sm', 'blocking']) expect(same[m], m).to.equal(false);
    for (const m of ['roster', 'presence', 'disco', 'ping', 'time', 'version', 'register']) expect(same[m], m).to.equal(undefined);
    expect(same.muc).to.be.an('object');
    expect(benchModules('same', { archive: true }).mam).to.equal(undefined);
    expect(Object.keys(benchModules('all'))).to.deep.equal(['muc']);
  });

  it('measures the resume cost only when asked with --resume N', () => {
    expect(parse().resumeSessions).to.equal(0);
    expect(parse('--resume', '500').resumeSessions).to.equal(500);
    expect(() => parse('--resume', 'many')).to.throw(OptionsError, /--resume/);
  });

  it('shrinks every size with --quick, and explicit flags still win', () => {
    const q = parse('--quick', '--users', '300');
    expect(q.idleSteps).to.deep.equal([500]);
    expect(q.users).to.equal(300);
    expect(q.duration).to.equal(3);
  });

  it('puts Parley on PostgreSQL (and Redis) with --parley-nodes N or --compare-nodes LIST', () => {
    expect(parse().parleyNodes).to.equal(undefined);
    expect(parse('--parley-nodes', '1').parleyNodes).to.equal(undefined);
    expect(parse('--parley-nodes', '3').parleyNodes).to.deep.equal([3]);
    const both = parse('--compare-nodes', '1,2', '--pg', 'postgres://x@h:1/db', '--redis', 'redis://h:2');
    expect(both.parleyNodes).to.deep.equal([1, 2]);
    expect([both.pgUrl, both.redisUrl]).to.deep.equal(['postgres://x@h:1/db', 'redis://h:2']);
    expect(parse().pgUrl).to.equal('postgres://postgres@127.0.0.1:5432/postgres');
    expect(parse().redisUrl).to.equal('redis://127.0.0.1:6379');
    expect(() => parse('--compare-nodes', '1,1')).to.throw(OptionsError, /distinct/);
    expect(() => parse('--compare-nodes', '0,2')).to.throw(OptionsError);
    expect(() => parse('--parley-nodes', '2', '--compare-nodes', '1,2')).to.throw(OptionsError, /exclude/);
    expect(() => parse('--parley-nodes', '2', '--host', 'h', '--port', '1')).to.throw(OptionsError, /--host/);
  });

  it('sorts --idle-steps and refuses garbage', () => {
    expect(parse('--idle-steps', '500,100').idleSteps).to.deep.equal([100, 500]);
    expect(() => parse('--idle-steps', '10,x')).to.throw(OptionsError);
  });
});

describe('bench/proc boundOf', () => {
  const base = { otherPct: 0, serverCapacityPct: 100, cores: 2 };
  it('names the resource closest to its ceiling', () => {
    expect(boundOf({ ...base, serverPct: 97, clientPct: 40 })).to.equal('server');
    expect(boundOf({ ...base, serverPct: 50, clientPct: 98 })).to.equal('loadgen');
    expect(boundOf({ ...base, serverPct: 80, clientPct: 80, otherPct: 35 })).to.equal('machine');
    expect(boundOf({ ...base, cores: 4, serverCapacityPct: 400, serverPct: 120, clientPct: 70 })).to.equal('loadgen');
    expect(boundOf({ ...base, serverCapacityPct: 200, serverPct: 120, clientPct: 70 })).to.equal('machine');
  });
});
