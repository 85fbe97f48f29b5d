// The cost of XEP-0198 resumption, standalone: N sessions log in and enable resumable stream
// management, their sockets are dropped without a word (the sessions hibernate), and each is
// resumed on a new TLS connection with <resume previd h/>. Prints resumes per second, latency
// (the whole reconnect, and the <resume/> step alone) and, when it starts Parley itself, the
// server's CPU time per resume next to its CPU time per fresh login. It speaks its own few lines
// of XMPP (xmpp-client.ts cannot pick a source address or stop before binding to resume).
//
//   node dist/bench/resume.js [--sessions 200] [--concurrency 20] [--tls starttls|direct]
//   node dist/bench/resume.js --host 127.0.0.1 --port 5222 --domain example.org \
//       --user-prefix bench --password secret      (a running server with those accounts)
import net from 'node:net';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import { pool } from './pool.js';
import { cpuSeconds } from './proc.js';
import { removeDir, sleep, stopAll, tempDir, writeCertificate, type PreparedServer, type RunningServer } from './server-common.js';
import { prepareParley } from './server-parley.js';
import { Samples } from './stats.js';
import { XmlSplitter } from './xml-splitter.js';
import { escapeXml, type Account, type Endpoint } from './xmpp-client.js';

const NS_SM = 'urn:xmpp:sm:3';
const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';
const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const TIMEOUT_MS = 30_000;

interface Hibernated {
  account: Account;
  previd: string;
  /** The h it resumes with: the stanzas after <enabled/> it says it handled. */
  handled: number;
  /** The address it connects from, again when it resumes. */
  localAddress: string | undefined;
}

interface Resumed {
  stream: Stream;
  /** Connect to <resumed/>: what a client waits for when its network comes back. */
  totalMs: number;
  /** <resume/> written to <resumed/>: the server's resumption itself. */
  stepMs: number;
}

const attr = (xml: string, name: string) => new RegExp(`\\s${name}=['"]([^'"]*)['"]`).exec(xml.slice(0, xml.indexOf('>')))?.[1];

/** One client connection, read element by element. */
class Stream {
  private readonly queue: string[] = [];
  private waiter: { resolve(xml: string): void; reject(err: Error): void } | undefined;
  private failure: Error | undefined;
  private readonly splitter = new XmlSplitter({
    onOpen: () => undefined,
    onElement: (xml) => {
      const w = this.waiter;
      this.waiter = undefined;
      if (w) w.resolve(xml);
      else this.queue.push(xml);
    },
    onClose: () => this.fail(new Error('the server closed the stream')),
  });

  private constructor(public socket: net.Socket) {
    this.listen(socket);
  }

  /**
   * TCP from `localAddress`, STARTTLS or direct TLS (a full handshake, no session reuse), SASL
   * PLAIN: where resource binding or <resume/> comes next.
   */
  static async authenticated(endpoint: Endpoint, account: Account, localAddress: string | undefined): Promise<Stream> {
    const tlsOptions = { servername: endpoint.domain, rejectUnauthorized: false };
    const where = { host: endpoint.host, port: endpoint.port, localAddress };
    const socket = endpoint.tls === 'direct' ? tls.connect({ ...where, ALPNProtocols: ['xmpp-client'], ...tlsOptions }) : net.connect(where);
    socket.setNoDelay(true);
    const s = new Stream(socket);
    try {
      await s.connected(endpoint.tls === 'direct' ? 'secureConnect' : 'connect');
      if (endpoint.tls === 'starttls') {
        if (!(await s.openStream(endpoint.domain)).includes(NS_TLS)) throw new Error('the server does not offer STARTTLS');
        s.write(`<starttls xmlns='${NS_TLS}'/>`);
        const proceed = await s.next();
        if (!proceed.startsWith('<proceed')) throw new Error(`STARTTLS refused: ${proceed.slice(0, 200)}`);
        socket.removeAllListeners('data');
        socket.removeAllListeners('close');
        socket.removeAllListeners('error');
        socket.on('error', () => undefined); // reported by the TLS socket
        s.socket = tls.connect({ socket, ...tlsOptions });
        s.listen(s.socket);
        await s.connected('secureConnect');
      }
      await s.openStream(endpoint.domain);
      const plain = Buffer.from(`\u0000${account.user}\u0000${account.password}`, 'utf8').toString('base64');
      s.write(`<auth xmlns='${NS_SASL}' mechanism='PLAIN'>${plain}</auth>`);
      const success = await s.next();
      if (!success.startsWith('<success')) throw new Error(`authentication of ${account.user} failed: ${success.slice(0, 200)}`);
      if (!(await s.openStream(endpoint.domain)).includes(NS_SM)) throw new Error('the server does not offer stream management');
      return s;
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  write(data: string): void {
    this.socket.write(data);
  }

  /** The next top-level element; `skip` ones are read past (acks requests, say). */
  async next(skip?: (xml: string) => boolean): Promise<string> {
    for (;;) {
      const xml = await this.one();
      if (!skip?.(xml)) return xml;
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  private one(): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  private async openStream(domain: string): Promise<string> {
    this.splitter.reset();
    this.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${escapeXml(domain)}' version='1.0'>`);
    const features = await this.next();
    if (!features.startsWith('<stream:features')) throw new Error(`expected stream features, got ${features.slice(0, 200)}`);
    return features;
  }

  private connected(event: 'connect' | 'secureConnect'): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.waiter = { resolve: () => undefined, reject };
      this.socket.once(event, () => {
        this.waiter = undefined;
        resolve();
      });
    });
  }

  private listen(sock: net.Socket): void {
    sock.on('data', (chunk: Buffer) => this.splitter.write(chunk));
    sock.on('error', (err) => this.fail(err));
    sock.on('close', () => this.fail(new Error('connection closed')));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(err);
  }
}

/** Rejects after TIMEOUT_MS, destroying the stream. */
async function timed<T>(what: string, stream: () => Stream | undefined, task: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      stream()?.destroy();
      reject(new Error(`${what} timed out after ${TIMEOUT_MS} ms`));
    }, TIMEOUT_MS);
  });
  try {
    return await Promise.race([task, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const isAckRequest = (xml: string) => xml.startsWith('<r ') || xml.startsWith('<r/');

/**
 * Logs in, binds, enables resumable stream management, sends itself one message and drops the
 * socket once it arrived: what a resume needs. The client resumes with h=0, as one whose last
 * message was lost with the connection: the server has that message to resend.
 */
async function hibernate(endpoint: Endpoint, account: Account, localAddress: string | undefined): Promise<Hibernated> {
  let s: Stream | undefined;
  return timed(`logging in ${account.user}`, () => s, (async () => {
    s = await Stream.authenticated(endpoint, account, localAddress);
    s.write(`<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>resume-bench</resource></bind></iq>`);
    const bound = await s.next();
    const jid = /<jid>([^<]+)<\/jid>/.exec(bound)?.[1];
    if (jid === undefined) throw new Error(`bind failed: ${bound.slice(0, 200)}`);
    s.write(`<enable xmlns='${NS_SM}' resume='true'/>`);
    const enabled = await s.next();
    const previd = attr(enabled, 'id');
    if (!enabled.startsWith('<enabled') || previd === undefined) throw new Error(`stream management refused: ${enabled.slice(0, 200)}`);
    s.write(`<message to='${escapeXml(jid)}' type='chat' id='resume-bench'><body>in flight</body></message>`);
    const echoed = await s.next(isAckRequest);
    if (!echoed.startsWith('<message')) throw new Error(`expected the message back, got ${echoed.slice(0, 200)}`);
    s.destroy();
    return { account, previd, handled: 0, localAddress };
  })());
}

/** A new connection that authenticates and resumes (<resume/> instead of resource binding). */
async function resume(endpoint: Endpoint, h: Hibernated): Promise<Resumed> {
  let s: Stream | undefined;
  return timed(`resuming ${h.account.user}`, () => s, (async () => {
    const started = performance.now();
    s = await Stream.authenticated(endpoint, h.account, h.localAddress);
    const stepStarted = performance.now();
    s.write(`<resume xmlns='${NS_SM}' previd='${escapeXml(h.previd)}' h='${h.handled}'/>`);
    const answer = await s.next();
    const done = performance.now();
    if (!answer.startsWith('<resumed')) throw new Error(`${h.account.user}: resumption failed: ${answer.slice(0, 200)}`);
    return { stream: s, totalMs: done - started, stepMs: done - stepStarted };
  })());
}

/**
 * Servers limit new connections per address and minute (Parley: limits.newConnectionsPerIpPerMinute,
 * 120 by default). On loopback every 127.x.y.z is this machine: connections are spread over
 * enough of them to stay below the limit. Elsewhere, the server's limit must allow 2 x sessions.
 */
function sourceAddress(endpoint: Endpoint, i: number): string | undefined {
  if (!endpoint.host.startsWith('127.')) return undefined;
  const n = Math.floor(i / 50) + 2; // 50 sessions (100 connections) per address
  return `127.0.${Math.floor(n / 250)}.${(n % 250) + 1}`;
}

function ms(v: number | undefined): string {
  return v === undefined ? 'n/a' : `${v.toFixed(1)} ms`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sessions: { type: 'string', default: '200' },
      concurrency: { type: 'string', default: '20' },
      tls: { type: 'string', default: 'starttls' },
      host: { type: 'string' },
      port: { type: 'string' },
      domain: { type: 'string', default: 'bench.example' },
      'user-prefix': { type: 'string', default: 'resume' },
      password: { type: 'string', default: 'bench-password' },
    },
  });
  const sessions = Number(values.sessions);
  const concurrency = Number(values.concurrency);
  if (!Number.isSafeInteger(sessions) || sessions < 1) throw new Error('--sessions must be a whole number >= 1');
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new Error('--concurrency must be a whole number >= 1');
  if (values.tls !== 'starttls' && values.tls !== 'direct') throw new Error('--tls must be starttls or direct');
  const tlsMode: Endpoint['tls'] = values.tls;
  const account = (i: number): Account => ({ user: `${values['user-prefix']}${i}`, password: values.password });

  let prepared: PreparedServer | undefined;
  let server: RunningServer | undefined;
  let certDir: string | undefined;
  let endpoint: Endpoint;
  if (values.port !== undefined) {
    endpoint = { host: values.host ?? '127.0.0.1', port: Number(values.port), domain: values.domain, tls: tlsMode };
  } else {
    certDir = tempDir('resume-cert');
    const cert = writeCertificate(certDir, values.domain);
    prepared = await prepareParley({
      domain: values.domain, tls: tlsMode, userPrefix: values['user-prefix'], password: values.password, accounts: sessions, cert,
      openFiles: 10_000, logDir: certDir, say: (line: string) => console.log(`  ${line}`),
    });
    server = await prepared.start();
    endpoint = server.endpoint;
  }
  const pid = server?.pid;
  const open: Stream[] = [];
  try {
    console.log(`resume cost: ${sessions} sessions, ${concurrency} at a time, ${tlsMode}, against ${prepared?.label ?? `${endpoint.host}:${endpoint.port}`}`);
    const loginCpu0 = pid === undefined ? undefined : cpuSeconds(pid);
    const hibernated: Hibernated[] = new Array<Hibernated>(sessions);
      await pool(sessions, concurrency, async (i) => {
      hibernated[i] = await hibernate(endpoint, account(i), sourceAddress(endpoint, i));
    });
    const loginCpu1 = pid === undefined ? undefined : cpuSeconds(pid);
    // Let the server notice every dropped connection: the sessions hibernate, none is still attached.
    await sleep(1000);

    const total = new Samples();
    const step = new Samples();
    const cpu0 = pid === undefined ? undefined : cpuSeconds(pid);
    const t0 = performance.now();
    await pool(sessions, concurrency, async (i) => {
      const r = await resume(endpoint, hibernated[i]!);
      open.push(r.stream);
      total.add(r.totalMs);
      step.add(r.stepMs);
    });
    const wall = (performance.now() - t0) / 1000;
    const cpu1 = pid === undefined ? undefined : cpuSeconds(pid);

    const [p50, p99] = total.percentiles(50, 99);
    const [s50, s99] = step.percentiles(50, 99);
    console.log(`resumes/s            ${(sessions / wall).toFixed(1)}  (${sessions} in ${wall.toFixed(2)} s)`);
    console.log(`reconnect + resume   p50 ${ms(p50)}  p99 ${ms(p99)}  (TCP, TLS handshake, SASL PLAIN, <resume/>)`);
    console.log(`<resume/> step only  p50 ${ms(s50)}  p99 ${ms(s99)}`);
    if (cpu0 !== undefined && cpu1 !== undefined) {
      console.log(`server CPU per resume  ${(((cpu1 - cpu0) * 1000) / sessions).toFixed(2)} ms`);
    }
    if (loginCpu0 !== undefined && loginCpu1 !== undefined) {
      console.log(`server CPU per login   ${(((loginCpu1 - loginCpu0) * 1000) / sessions).toFixed(2)} ms  (login, bind, enable, one message; for comparison)`);
    }
  } finally {
    for (const s of open) s.destroy();
    await server?.stop();
    await prepared?.dispose();
    if (certDir !== undefined) removeDir(certDir);
  }
}

main().catch(async (err: unknown) => {
  console.error(`resume bench failed: ${err instanceof Error ? err.message : String(err)}`);
  await stopAll();
  process.exit(1);
});
