// DNS as clients and servers will see it: the SRV records of RFC 6120 §3.2.1 and XEP-0368 for
// each host, and addresses for each host and each of its service domains (conference., upload.),
// which other servers (and browsers, for uploads) must reach.
import type { CheckLine, CheckResolver } from './types.js';

export interface DnsCheckTarget {
  host: string;
  /** Service domains of the host (MUC, upload). */
  services: readonly string[];
  /** The server federates (an s2s listener exists): _xmpp-server._tcp matters. */
  federates: boolean;
}

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/** ENOTFOUND / ENODATA mean "no such record"; anything else is a failed query. */
function isMissing(err: unknown): boolean {
  const c = code(err);
  return c === 'ENOTFOUND' || c === 'ENODATA';
}

async function addresses(resolver: CheckResolver, name: string): Promise<{ v4: string[]; v6: string[]; error?: string }> {
  const one = async (f: (n: string) => Promise<string[]>): Promise<string[] | string> => {
    try {
      return await f.call(resolver, name);
    } catch (err) {
      return isMissing(err) ? [] : (code(err) ?? 'error');
    }
  };
  const [v4, v6] = await Promise.all([one(resolver.resolve4), one(resolver.resolve6)]);
  const error = typeof v4 === 'string' ? v4 : typeof v6 === 'string' ? v6 : undefined;
  return { v4: typeof v4 === 'string' ? [] : v4, v6: typeof v6 === 'string' ? [] : v6, ...(error ? { error } : {}) };
}

async function srv(resolver: CheckResolver, name: string): Promise<{ records: Array<{ name: string; port: number }>; error?: string }> {
  try {
    return { records: (await resolver.resolveSrv(name)).sort((a, b) => a.priority - b.priority || b.weight - a.weight) };
  } catch (err) {
    return isMissing(err) ? { records: [] } : { records: [], error: code(err) ?? 'error' };
  }
}

export async function checkDns(resolver: CheckResolver, target: DnsCheckTarget): Promise<CheckLine[]> {
  const { host } = target;
  const lines: CheckLine[] = [];
  const hostAddr = await addresses(resolver, host);
  const show = (a: { v4: string[]; v6: string[] }) => [...a.v4, ...a.v6].join(', ');

  // RFC 6120 §3.2.1 (clients), XEP-0368 (direct TLS), RFC 6120 §3.2.1 again for servers.
  const names = [
    { name: `_xmpp-client._tcp.${host}`, who: 'clients', needed: true },
    { name: `_xmpps-client._tcp.${host}`, who: 'clients (direct TLS)', needed: false },
    ...(target.federates ? [{ name: `_xmpp-server._tcp.${host}`, who: 'other servers', needed: true }] : []),
  ];
  for (const n of names) {
    const r = await srv(resolver, n.name);
    if (r.error) {
      lines.push({ status: 'warn', what: `dns ${n.name}`, detail: `could not query DNS (${r.error})` });
    } else if (r.records.length > 0) {
      const bad: string[] = [];
      for (const rec of r.records) {
        // RFC 2782: "." means the service is decidedly not available.
        if (rec.name === '' || rec.name === '.') continue;
        const a = await addresses(resolver, rec.name);
        if (a.v4.length + a.v6.length === 0) bad.push(rec.name);
      }
      const list = r.records.map((rec) => `${rec.name}:${rec.port}`).join(', ');
      if (bad.length > 0) lines.push({ status: 'FAIL', what: `dns ${n.name}`, detail: `→ ${list}, but ${bad.join(', ')} has no A/AAAA record (add one)` });
      else lines.push({ status: 'ok', what: `dns ${n.name}`, detail: `→ ${list}` });
    } else if (!n.needed) {
      lines.push({ status: 'ok', what: `dns ${n.name}`, detail: 'none (optional: direct TLS for clients, XEP-0368)' });
    } else if (hostAddr.v4.length + hostAddr.v6.length > 0) {
      lines.push({ status: 'ok', what: `dns ${n.name}`, detail: `none; ${n.who} will connect to ${host} itself (${show(hostAddr)}) on the default port` });
    } else {
      lines.push({ status: 'warn', what: `dns ${n.name}`, detail: `none, and ${host} has no address: ${n.who} cannot find this server (add SRV or A/AAAA records)` });
    }
  }

  if (hostAddr.error) lines.push({ status: 'warn', what: `dns ${host}`, detail: `could not query DNS (${hostAddr.error})` });
  else if (hostAddr.v4.length + hostAddr.v6.length > 0) lines.push({ status: 'ok', what: `dns ${host}`, detail: show(hostAddr) });
  else lines.push({ status: 'warn', what: `dns ${host}`, detail: 'no A/AAAA record (fine only when SRV records point elsewhere)' });

  for (const service of target.services) {
    const a = await addresses(resolver, service);
    const srvS2s = target.federates ? await srv(resolver, `_xmpp-server._tcp.${service}`) : { records: [] };
    if (a.error) lines.push({ status: 'warn', what: `dns ${service}`, detail: `could not query DNS (${a.error})` });
    else if (a.v4.length + a.v6.length > 0 || srvS2s.records.length > 0) {
      lines.push({ status: 'ok', what: `dns ${service}`, detail: a.v4.length + a.v6.length > 0 ? show(a) : `SRV ${srvS2s.records.map((r) => `${r.name}:${r.port}`).join(', ')}` });
    } else {
      lines.push({ status: 'warn', what: `dns ${service}`, detail: `no A/AAAA or _xmpp-server._tcp record: users of other servers cannot reach it (add a record pointing to this server)` });
    }
  }
  return lines;
}
