// Test-only helpers shared by the SASL specs.
import { openAccounts } from '../../../lib/accounts/service.js';
import type { AccountService } from '../../../lib/accounts/types.js';
import type { ChannelBindingType, SaslContext, SaslExchange, SaslStep, TlsChannel } from '../../../lib/sasl/mechanism.js';
import { openDatabase } from '../../../lib/storage/database.js';
import type { Database } from '../../../lib/storage/types.js';

export const HOST = 'example.org';

export interface Accounts {
  database: Database;
  accounts: AccountService;
  close(): Promise<void>;
}

/** An in-memory database with juliet (password "r0m30") and romeo (password "balcony"). */
export async function memoryAccounts(): Promise<Accounts> {
  const database = await openDatabase({ driver: 'sqlite', path: ':memory:' });
  const accounts = await openAccounts(database);
  await accounts.create(HOST, 'juliet', 'r0m30');
  await accounts.create(HOST, 'romeo', 'balcony');
  return { database, accounts, close: () => database.close() };
}

/** A TLS channel with fixed binding data, for tests that need no sockets. */
export function fakeTls(data: Partial<Record<ChannelBindingType, Buffer>> = { 'tls-exporter': Buffer.alloc(32, 7) }): TlsChannel {
  return {
    version: 'TLSv1.3',
    bindings: () => (Object.keys(data) as ChannelBindingType[]).filter((t) => data[t] !== undefined),
    bindingData: (t) => data[t],
  };
}

export function context(accounts: AccountService, tls?: TlsChannel, offered?: string[]): SaslContext {
  return offered === undefined ? { host: HOST, tls, credentials: accounts } : { host: HOST, tls, credentials: accounts, offered };
}

export function challenge(step: SaslStep): Buffer {
  if (step.kind !== 'challenge') throw new Error(`expected a challenge, got ${JSON.stringify(step)}`);
  return step.data;
}

/** Runs client-first then client-final through an exchange (stopping at a failure of the first). */
export async function scramRound(
  exchange: SaslExchange,
  client: { first(): Buffer; final(serverFirst: Buffer): Buffer },
): Promise<{ serverFirst: Buffer; result: SaslStep }> {
  const start = await exchange.start(client.first());
  if (start.kind !== 'challenge') return { serverFirst: Buffer.alloc(0), result: start };
  const serverFirst = start.data;
  const result = await exchange.step(client.final(serverFirst));
  return { serverFirst, result };
}
