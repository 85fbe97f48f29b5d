// One line of `parley check`: what was checked, how it went, and the detail an admin acts on.
export type CheckStatus = 'ok' | 'warn' | 'FAIL';

export interface CheckLine {
  status: CheckStatus;
  what: string;
  detail: string;
}

/** The DNS lookups the checks make; node:dns/promises' Resolver is one. */
export interface CheckResolver {
  resolveSrv(name: string): Promise<Array<{ name: string; port: number; priority: number; weight: number }>>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
}
