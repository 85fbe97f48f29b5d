// Settings that work but put a deployment at risk: `parley check` warns about each, saying what
// to change.
import { isIP } from 'node:net';
import type { ParleyConfig } from '../config/schema.js';
import type { CheckLine } from './types.js';

/** Enabled modules of one host with their validated options (lib/config/load resolveModules). */
export type HostModules = ReadonlyArray<{ name: string; options: unknown }>;

export function isLoopback(address: string): boolean {
  const a = address.replace(/^\[(.*)\]$/, '$1');
  if (a === 'localhost' || a === '::1') return true;
  return isIP(a) === 4 && a.startsWith('127.');
}

export function riskySettings(config: ParleyConfig, perHost: ReadonlyMap<string, HostModules>): CheckLine[] {
  const lines: CheckLine[] = [];
  if (!config.tls.requireEncryption) {
    lines.push({ status: 'warn', what: 'setting tls.requireEncryption', detail: 'false: clients may log in without TLS, sending passwords in the clear (set it to true)' });
  }
  if (!config.s2s.requireEncryption && config.listeners.some((l) => l.type === 's2s' || l.type === 's2s-tls')) {
    lines.push({ status: 'warn', what: 'setting s2s.requireEncryption', detail: 'false: messages to and from other servers may travel unencrypted (set it to true)' });
  }
  for (const [i, l] of config.listeners.entries()) {
    if (l.type === 'http' && !isLoopback(l.address)) {
      lines.push({ status: 'warn', what: `setting listeners[${i}]`, detail: `a plain http listener on ${l.address}:${l.port}: BOSH, WebSocket and uploads travel unencrypted (use https, or bind it to 127.0.0.1 behind a TLS reverse proxy)` });
    }
    if (l.type === 'component' && !isLoopback(l.address)) {
      lines.push({ status: 'warn', what: `setting listeners[${i}]`, detail: `a component listener on ${l.address}:${l.port}: XEP-0114 is unencrypted (bind it to 127.0.0.1)` });
    }
  }
  for (const [host, modules] of perHost) {
    const register = modules.find((m) => m.name === 'register')?.options as { allowRegistration?: boolean; registrationsPerIpPerHour?: number } | undefined;
    if (register?.allowRegistration) {
      const invites = modules.some((m) => m.name === 'invites');
      lines.push({
        status: 'warn',
        what: `setting modules.register on ${host}`,
        detail: `open registration: anyone can create accounts (${register.registrationsPerIpPerHour ?? '?'} per address per hour), which spammers use; `
          + (invites ? 'turn allowRegistration off and hand out invites (parley invite create)' : 'turn allowRegistration off and enable invites: {} for invite-only registration'),
      });
    }
  }
  if (config.admins.length === 0) {
    lines.push({ status: 'warn', what: 'setting admins', detail: 'none: nobody can run the admin commands or review spam reports (add your account to admins:)' });
  }
  return lines;
}
