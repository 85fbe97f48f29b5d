// Starts a real Parley on ephemeral loopback ports, with a generated certificate and a fresh
// SQLite file, for end-to-end specs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../lib/config/load.js';
import { MODULE_CATALOG } from '../../lib/modules/catalog.js';
import { startServer, type RunningServer } from '../../lib/server.js';
import { silentLogger, type Logger } from '../../lib/log.js';

export interface TestServer {
  server: RunningServer;
  domain: string;
  dir: string;
  port(type: 'c2s' | 'c2s-tls' | 'http'): number;
  addUser(user: string, password: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestServer(overrides: Record<string, unknown> = {}, domain = 'localhost', options: { log?: Logger } = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-e2e-'));
  const config = parseConfig(
    {
      hosts: [domain],
      listeners: [
        { type: 'c2s', port: 0, address: '127.0.0.1' },
        { type: 'c2s-tls', port: 0, address: '127.0.0.1' },
        { type: 'http', port: 0, address: '127.0.0.1' },
      ],
      tls: { certificates: 'certs', generate: true },
      storage: { driver: 'sqlite', path: 'parley.db' },
      auth: { scramIterations: 4096 },
      ...overrides,
    },
    MODULE_CATALOG,
    dir,
  );
  const server = await startServer(config, { log: options.log ?? silentLogger() });
  return {
    server,
    domain,
    dir,
    port(type) {
      const a = server.addresses.find((x) => x.type === type);
      if (!a) throw new Error(`no ${type} listener`);
      return a.port;
    },
    addUser: (user, password) => server.accounts.create(domain, user, password),
    async stop() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
