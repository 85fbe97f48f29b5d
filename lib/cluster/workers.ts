// `parley start --nodes N`: N cluster nodes on one machine, one process each, sharing the
// listening ports through node:cluster (the primary accepts and hands connections to the
// workers in turn). Each worker is a full node, named <cluster.node>-<i>, on the same Redis and
// PostgreSQL. The primary restarts a worker that dies, stops them all on SIGINT/SIGTERM and
// passes SIGHUP (reload) on to each.
import cluster, { type Worker } from 'node:cluster';
import type { ParleyConfig } from '../config/schema.js';
import { AdminError } from '../config/errors.js';

const INDEX_ENV = 'PARLEY_NODE_INDEX';
/** A worker that dies this soon after it started is not restarted (a config or port problem). */
const MIN_UPTIME_MS = 5000;

export function isWorker(): boolean {
  return cluster.isWorker && process.env[INDEX_ENV] !== undefined;
}

/** In a worker: the config with this worker's node name. */
export function workerConfig(config: ParleyConfig): ParleyConfig {
  if (!config.cluster) return config;
  return { ...config, cluster: { ...config.cluster, node: `${config.cluster.node}-${process.env[INDEX_ENV]}` } };
}

/** The primary: forks the workers and keeps them running; resolves with the exit code. */
export function runPrimary(config: ParleyConfig, count: number, log: (line: string) => void): Promise<number> {
  if (!config.cluster) {
    throw new AdminError('PARLEY_ERR_CONFIG', '--nodes needs cluster mode', 'add cluster: {redis: redis://127.0.0.1:6379, node: <name>} to the config');
  }
  return new Promise((resolve) => {
    let stopping = false;
    let failed = false;
    const started = new Map<number, number>();
    const workers = new Map<number, Worker>();
    const fork = (index: number): void => {
      const worker = cluster.fork({ [INDEX_ENV]: String(index) });
      workers.set(index, worker);
      started.set(index, Date.now());
      worker.on('exit', (code, signal) => {
        workers.delete(index);
        if (stopping) {
          if (workers.size === 0) resolve(failed ? 3 : 0);
          return;
        }
        const uptime = Date.now() - (started.get(index) ?? 0);
        log(`parley: node ${config.cluster!.node}-${index} exited (${signal ?? `code ${code}`})${uptime < MIN_UPTIME_MS ? '' : '; restarting it'}`);
        if (uptime < MIN_UPTIME_MS) {
          // It failed at start: the others would too. Stop everything with its exit code.
          failed = true;
          stop();
          if (workers.size === 0) resolve(3);
          return;
        }
        fork(index);
      });
    };
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      for (const w of workers.values()) w.process.kill('SIGTERM');
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    // `parley reload` signals the primary (it holds the pid file): every node reloads.
    process.on('SIGHUP', () => {
      for (const w of workers.values()) w.process.kill('SIGHUP');
    });
    for (let i = 1; i <= count; i++) fork(i);
  });
}
