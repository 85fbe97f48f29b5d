// The `mam` phase: archive page latency (XEP-0313 v2 with XEP-0059 RSM) on a large archive, over
// real TLS sessions. Closed loop: each of --mam-clients sessions of the archive's owner sends one
// query, waits for its <fin/> IQ result, sends the next. Queries are drawn at random from four
// kinds, each a page of --mam-page items: <before/> a random item, <after/> a random item, and
// the same two with a `with` filter on one conversation partner. Latency = IQ result time - send.
import { performance } from 'node:perf_hooks';
import { CpuMeter, type CpuReading } from './proc.js';
import { pool } from './pool.js';
import { Samples } from './stats.js';
import { archiveId, type ArchiveShape } from './server-parley-archive.js';
import { XmppConnection, escapeXml } from './xmpp-client.js';
import type { LoadTarget } from './target.js';

export const MAM_KINDS = ['before', 'after', 'with+before', 'with+after'] as const;
export type MamKind = (typeof MAM_KINDS)[number];

export interface MamKindResult {
  queries: number;
  p50Ms: number | undefined;
  p99Ms: number | undefined;
}

export interface MamResult {
  archiveMessages: number;
  fillSeconds: number | undefined;
  seconds: number;
  clients: number;
  pageSize: number;
  queries: number;
  perSecond: number;
  p50Ms: number | undefined;
  p90Ms: number | undefined;
  p99Ms: number | undefined;
  maxMs: number | undefined;
  /** Items per page, on average (a page near an end of the archive is short). */
  meanItems: number | undefined;
  byKind: Record<MamKind, MamKindResult>;
  /** Pages whose items were not the ones asked for (wrong count, or not the next/previous ids). */
  wrongPages: number;
  errors: number;
  errorSamples: string[];
  cpu: CpuReading;
}

const NS_MAM = 'urn:xmpp:mam:2';
const NS_RSM = 'http://jabber.org/protocol/rsm';

function queryXml(id: string, pageSize: number, kind: MamKind, anchor: string, withJid: string | undefined): string {
  const withField = withJid === undefined ? '' : `<field var='with'><value>${escapeXml(withJid)}</value></field>`;
  const cursor = kind.endsWith('before') ? `<before>${anchor}</before>` : `<after>${anchor}</after>`;
  return (
    `<iq type='set' id='${id}'><query xmlns='${NS_MAM}' queryid='${id}'>` +
    `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>${NS_MAM}</value></field>${withField}</x>` +
    `<set xmlns='${NS_RSM}'><max>${pageSize}</max>${cursor}</set></query></iq>`
  );
}

export async function measureMam(
  target: LoadTarget,
  shape: ArchiveShape,
  opts: { seconds: number; clients: number; pageSize: number; fillSeconds?: number },
): Promise<MamResult> {
  const owner = { user: `${target.userPrefix}${shape.owner}`, password: target.password };
  const sessions: XmppConnection[] = new Array(opts.clients);
  await pool(opts.clients, 10, async (i) => {
    sessions[i] = await XmppConnection.login(target.endpoint, owner, `mam-${i}`);
  });

  const all = new Samples();
  const kindSamples = Object.fromEntries(MAM_KINDS.map((k) => [k, new Samples()])) as Record<MamKind, Samples>;
  let errors = 0;
  const errorSamples: string[] = [];
  const fail = (msg: string): void => {
    errors++;
    if (errorSamples.length < 3 && !errorSamples.includes(msg)) errorSamples.push(msg);
  };
  let wrongPages = 0;
  let items = 0;
  let seq = 0;
  const end = performance.now() + opts.seconds * 1000;
  const cpu = new CpuMeter(target.pid, target.capacityPct);
  const start = performance.now();

  const client = async (conn: XmppConnection): Promise<void> => {
    while (performance.now() < end) {
      const kind = MAM_KINDS[Math.floor(Math.random() * MAM_KINDS.length)]!;
      const filtered = kind.startsWith('with');
      // A random item; with a filter, its partner's conversation (item i is with peer i % peers,
      // so that conversation is every peers-th item from i % peers).
      const i = Math.floor(Math.random() * shape.messages);
      const peer = i % shape.peers;
      const withJid = filtered ? `${target.userPrefix}${peer + 1}@${target.endpoint.domain}` : undefined;
      const step = filtered ? shape.peers : 1;
      const id = `q${++seq}`;
      const ids: string[] = [];
      const began = performance.now();
      const reply = await new Promise<string>((resolve, reject) => {
        conn.onStanza = (xml) => {
          if (xml.startsWith('<message')) {
            const m = /<result[^>]*\sid=['"]([^'"]+)['"]/.exec(xml);
            if (m && (xml.includes(`queryid='${id}'`) || xml.includes(`queryid="${id}"`))) ids.push(m[1]!);
            return;
          }
          if (xml.startsWith('<iq') && (xml.includes(`id='${id}'`) || xml.includes(`id="${id}"`))) resolve(xml);
        };
        conn.onLost = (reason) => reject(new Error(`session lost: ${reason}`));
        conn.write(queryXml(id, opts.pageSize, kind, archiveId(i), withJid));
      }).catch((err: unknown) => {
        fail(err instanceof Error ? err.message : String(err));
        return undefined;
      });
      if (reply === undefined) return;
      const ms = performance.now() - began;
      if (!/type=['"]result['"]/.test(reply.slice(0, reply.indexOf('>')))) {
        fail(`query refused: ${reply.slice(0, 300)}`);
        continue;
      }
      all.add(ms);
      kindSamples[kind].add(ms);
      items += ids.length;
      // The page must be the neighbours of item i, in archive order.
      const n = opts.pageSize;
      const expected: string[] = [];
      if (kind.endsWith('before')) for (let j = Math.max(i % step, i - n * step); j < i; j += step) expected.push(archiveId(j));
      else for (let j = i + step; j < shape.messages && expected.length < n; j += step) expected.push(archiveId(j));
      if (ids.length !== expected.length || ids.some((x, k) => x !== expected[k])) wrongPages++;
    }
  };
  await Promise.all(sessions.map((s) => client(s)));
  const elapsed = (performance.now() - start) / 1000;
  const share = cpu.read();
  await pool(sessions.length, 10, (i) => sessions[i]!.close());

  const [p50, p90, p99, max] = all.percentiles(50, 90, 99, 100);
  const byKind = Object.fromEntries(
    MAM_KINDS.map((k) => {
      const [a, b] = kindSamples[k].percentiles(50, 99);
      return [k, { queries: kindSamples[k].count, p50Ms: a, p99Ms: b }];
    }),
  ) as Record<MamKind, MamKindResult>;
  return {
    archiveMessages: shape.messages,
    fillSeconds: opts.fillSeconds,
    seconds: elapsed,
    clients: opts.clients,
    pageSize: opts.pageSize,
    queries: all.count,
    perSecond: all.count / elapsed,
    p50Ms: p50,
    p90Ms: p90,
    p99Ms: p99,
    maxMs: max,
    meanItems: all.count === 0 ? undefined : items / all.count,
    byKind,
    wrongPages,
    errors,
    errorSamples,
    cpu: share,
  };
}
