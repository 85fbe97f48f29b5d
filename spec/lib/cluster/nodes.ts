// Cluster nodes for specs: in this process (startTestServer with a `cluster` key) or as child
// processes running dist/bin/parley.js (so that one can be SIGKILLed), all on the local Redis and
// one PostgreSQL schema of a throw-away database, under a Redis key prefix of their own.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { postgresSkipReason, sharedPostgres } from '../../storage/backends.js';

export const REDIS_URL = process.env.PARLEY_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
export const REDIS_SKIP_MESSAGE = `Redis not reachable at ${REDIS_URL}: start redis-server to run the cluster tests`;

let reachable: Promise<boolean> | undefined;

export function redisReachable(): Promise<boolean> {
  reachable ??= (async () => {
    const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2000, retryStrategy: () => null });
    r.on('error', () => undefined);
    try {
      await r.connect();
      return (await r.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      r.disconnect();
    }
  })();
  return reachable;
}

/** Why the cluster specs cannot run here (Redis or PostgreSQL missing), or undefined. */
export async function clusterSkipReason(): Promise<string | undefined> {
  if (!(await redisReachable())) return REDIS_SKIP_MESSAGE;
  return postgresSkipReason();
}

/** A fresh key prefix and PostgreSQL schema: one cluster, isolated from every other spec. */
export interface ClusterWorld {
  readonly prefix: string;
  readonly pgUrl: string;
  /** The upload directory every node shares (README: upload storage is one shared directory). */
  readonly uploads: string;
  /** Deletes every Redis key of this cluster. */
  cleanup(): Promise<void>;
}

export async function newWorld(): Promise<ClusterWorld> {
  const prefix = `parley-test-${randomBytes(5).toString('hex')}:`;
  const db = await sharedPostgres();
  const schema = await db.schema();
  const uploads = mkdtempSync(join(tmpdir(), 'parley-uploads-'));
  return {
    prefix,
    pgUrl: db.url(schema),
    uploads,
    async cleanup() {
      rmSync(uploads, { recursive: true, force: true });
      const r = new Redis(REDIS_URL);
      try {
        const keys = await r.keys(`${prefix}*`);
        if (keys.length > 0) await r.del(...keys);
      } finally {
        r.disconnect();
      }
    },
  };
}

/** Fast failure detection for specs: a beat every 200 ms, dead after 1.2 s. */
export const FAST = { heartbeat: 200, expiry: 1200 };

export function clusterConfig(world: ClusterWorld, node: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    storage: { driver: 'postgres', url: world.pgUrl },
    cluster: { redis: REDIS_URL, node, prefix: world.prefix, ...FAST, ...extra },
    modules: { upload: { path: world.uploads } },
  };
}

export async function startNode(world: ClusterWorld, node: string, overrides: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<TestServer> {
  const config = clusterConfig(world, node, extra);
  const modules = { ...(config.modules as Record<string, unknown>), ...((overrides.modules as Record<string, unknown> | undefined) ?? {}) };
  return startTestServer({ ...config, ...overrides, modules });
}

/** A node in a child process; `port` is its c2s port. */
export interface ChildNode {
  readonly proc: ChildProcess;
  readonly port: number;
  readonly domain: string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const PARLEY_BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'parley.js');

export async function spawnNode(world: ClusterWorld, node: string, overrides: Record<string, unknown> = {}): Promise<ChildNode> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-node-'));
  const config = {
    hosts: ['localhost'],
    listeners: [{ type: 'c2s', port: 0, address: '127.0.0.1' }],
    tls: { certificates: 'certs', generate: true },
    auth: { scramIterations: 4096 },
    log: { level: 'info', pretty: false },
    ...clusterConfig(world, node),
    ...overrides,
  };
  const file = join(dir, 'parley.yaml');
  writeFileSync(file, JSON.stringify(config));
  const proc = spawn(process.execPath, [PARLEY_BIN, 'start', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node ${node} did not start: ${output.slice(-2000)}`)), 20_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /"listeners":\["c2s:(\d+)"/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`node ${node} exited with ${code}: ${output.slice(-2000)}`));
    });
  });
  return {
    proc,
    port,
    domain: 'localhost',
    async kill(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A TestServer-shaped view of a child node, for the raw client helpers. */
export function asTestServer(child: ChildNode): TestServer {
  return {
    server: undefined as never,
    domain: child.domain,
    dir: '',
    port: () => child.port,
    addUser: () => Promise.reject(new Error('add users through an in-process node')),
    stop: () => child.kill(),
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
