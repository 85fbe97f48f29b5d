// The mam phase's archive: BEFORE Parley starts (bench/server-parley.ts), a one-to-one MAM
// archive of `messages` items for one account written straight into the SQLite `archive` table in large transactions
// (one prepared INSERT, 100,000 rows a transaction: a million rows in seconds, where a million
// archived messages over the wire would take minutes). The server opens the file afterwards and
// serves it as if it had archived every one.
import BetterSqlite3 from 'better-sqlite3';
import type { LaunchContext } from './server-common.js';

/** The shape of the prefilled archive, shared with the query load (bench/mam.ts). */
export interface ArchiveShape {
  /** The account whose archive is filled: userPrefix + this index. */
  owner: number;
  messages: number;
  /** Conversation partners: userPrefix + 1 .. userPrefix + peers; item i is with peer (i % peers) + 1. */
  peers: number;
  /** Milliseconds between consecutive items; the newest is a minute old. */
  spacingMs: number;
}

export const ARCHIVE_SHAPE: ArchiveShape = { owner: 0, messages: 1_000_000, peers: 10, spacingMs: 20 };

/** The archive id of item i: fixed, so the load generator can name any item without a lookup. */
export const archiveId = (i: number): string => `bench-${i.toString(36).padStart(5, '0')}`;

/** Writes the archive into the (already migrated) SQLite file `dbFile`. */
export function fillArchive(dbFile: string, ctx: Pick<LaunchContext, 'domain' | 'userPrefix'>, shape: ArchiveShape): { messages: number; seconds: number } {
  const started = Date.now();
  const db = new BetterSqlite3(dbFile);
  try {
    const owner = `${ctx.userPrefix}${shape.owner}`;
    const me = `${owner}@${ctx.domain}`;
    const peers = Array.from({ length: shape.peers }, (_, k) => `${ctx.userPrefix}${k + 1}@${ctx.domain}`);
    const newest = Date.now() - 60_000;
    const oldest = newest - (shape.messages - 1) * shape.spacingMs;
    const insert = db.prepare('INSERT INTO archive (host, user, store, id, ts, with_jid, value) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const batch = db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const peer = peers[i % shape.peers]!;
        // Half the conversation each way, as the MAM module stores it: the message as routed.
        const [from_, to_] = i % 2 === 0 ? [`${peer}/phone`, me] : [`${me}/desk`, peer];
        const value =
          `<message xmlns="jabber:client" from="${from_}" to="${to_}" type="chat" id="m${i}">` +
          `<body>archived message number ${i}, a sentence of ordinary length for a chat line.</body></message>`;
        insert.run(ctx.domain, owner, 'mam', archiveId(i), oldest + i * shape.spacingMs, peer, value);
      }
    });
    const step = 100_000;
    for (let i = 0; i < shape.messages; i += step) batch(i, Math.min(shape.messages, i + step));
    db.pragma('optimize');
  } finally {
    db.close();
  }
  return { messages: shape.messages, seconds: (Date.now() - started) / 1000 };
}
