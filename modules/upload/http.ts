// The HTTP side of XEP-0363: PUT to a signed slot URL, GET the file back (§6, §7, §11 CORS).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../lib/module-api.js';
import type { UploadStore } from './store.js';
import { UPLOAD_PATH, dispositionFilename, sameMediaType, verify, cleanContentType } from './slots.js';

/** XEP-0363 §11: web clients on any origin upload and download. */
const CORS: Record<string, string> = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, HEAD, PUT, OPTIONS',
  'access-control-allow-headers': 'Content-Type, Authorization',
  'access-control-max-age': '86400',
};

export interface UploadHttpOptions {
  store: UploadStore;
  dir: string;
  secret(): Promise<Buffer>;
  log: Logger;
}

function reply(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return void res.end();
  const body = `${text}\n`;
  res.writeHead(status, { ...CORS, ...headers, 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), 'x-content-type-options': 'nosniff' });
  res.end(body);
}

/** `/upload/<id>/<name>` → its parts (name decoded); undefined when the path is not one. */
function parsePath(url: string | undefined): { id: string; name: string; query: URLSearchParams } | undefined {
  if (url === undefined) return undefined;
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  if (!path.startsWith(UPLOAD_PATH)) return undefined;
  const rest = path.slice(UPLOAD_PATH.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return undefined;
  const id = rest.slice(0, slash);
  if (!/^[A-Za-z0-9_-]+$/.test(id)) return undefined;
  try {
    return { id, name: decodeURIComponent(rest.slice(slash + 1)), query };
  } catch {
    return undefined;
  }
}

/** Shown in the browser only for media; everything else downloads (§12 security). */
function inline(contentType: string): boolean {
  return /^(image|audio|video)\//.test(contentType) && !/^image\/svg/.test(contentType);
}

export class UploadHttp {
  /** Slots being uploaded to right now, on this node. */
  private readonly busy = new Set<string>();

  constructor(private readonly opts: UploadHttpOptions) {}

  filePath(id: string): string {
    return join(this.opts.dir, id);
  }

  handle = async (req: IncomingMessage, res: ServerResponse): Promise<void | 'pass'> => {
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') {
      // CORS preflight: the same answer for every slot.
      res.writeHead(204, CORS).end();
      return;
    }
    const target = parsePath(req.url);
    if (!target) return 'pass';
    const row = await this.opts.store.get(target.id);
    // Another host's slot (each host's instance has its own rows), or none.
    if (!row) return 'pass';
    if (row.filename !== target.name) return reply(res, 404, 'not found');
    if (method === 'PUT') return this.put(req, res, row, target.query);
    if (row.uploadedAt === undefined) return reply(res, 404, 'not found');
    const headers: Record<string, string> = {
      ...CORS,
      'content-type': row.contentType,
      'content-length': String(row.size),
      'content-disposition': `${inline(row.contentType) ? 'inline' : 'attachment'}; filename*=${dispositionFilename(row.filename)}`,
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'none'; sandbox",
      'cache-control': 'public, max-age=31536000, immutable',
      'last-modified': new Date(row.uploadedAt).toUTCString(),
      'accept-ranges': 'bytes',
    };
    // RFC 9110 §14: one byte range (players seek in audio and video); several are served whole.
    let status = 200;
    let range: { start: number; end: number } | undefined;
    const asked = req.headers.range;
    if (asked !== undefined) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(asked.trim());
      if (m && (m[1] !== '' || m[2] !== '')) {
        const start = m[1] === '' ? Math.max(0, row.size - Number(m[2])) : Number(m[1]);
        const end = m[1] === '' || m[2] === '' ? row.size - 1 : Math.min(Number(m[2]), row.size - 1);
        if (start > end || start >= row.size) {
          return reply(res, 416, 'range not satisfiable', { 'content-range': `bytes */${row.size}` });
        }
        range = { start, end };
        status = 206;
        headers['content-range'] = `bytes ${start}-${end}/${row.size}`;
        headers['content-length'] = String(end - start + 1);
      }
    }
    if (method === 'HEAD') {
      res.writeHead(status, headers).end();
      return;
    }
    const stream = createReadStream(this.filePath(row.id), range);
    await new Promise<void>((resolve) => {
      stream.once('open', () => {
        res.writeHead(status, headers);
        stream.pipe(res);
      });
      stream.once('error', (err) => {
        this.opts.log.warn({ err, id: row.id }, 'upload: file missing for a stored slot');
        if (!res.headersSent) reply(res, 404, 'not found');
        else res.destroy();
        resolve();
      });
      stream.once('close', () => resolve());
      res.once('close', () => stream.destroy());
    });
  };

  private async put(
    req: IncomingMessage,
    res: ServerResponse,
    row: { id: string; filename: string; size: number; contentType: string; uploadedAt: number | undefined },
    query: URLSearchParams,
  ): Promise<void> {
    const close = { connection: 'close' };
    const expires = Number(query.get('e'));
    const sig = query.get('s') ?? '';
    const secret = await this.opts.secret();
    if (!Number.isSafeInteger(expires) || !verify(secret, sig, row.id, row.filename, row.size, row.contentType, expires)) {
      return reply(res, 403, 'bad signature', close);
    }
    if (expires * 1000 < Date.now()) return reply(res, 403, 'this upload slot has expired; request a new one', close);
    if (row.uploadedAt !== undefined || this.busy.has(row.id)) return reply(res, 409, 'this slot was already used', close);
    // §6: the Content-Length must be the size of the slot request.
    const declared = req.headers['content-length'];
    if (declared === undefined) return reply(res, 411, 'Content-Length is required', close);
    if (Number(declared) !== row.size) return reply(res, Number(declared) > row.size ? 413 : 400, `Content-Length must be ${row.size}`, close);
    const type = req.headers['content-type'] === undefined ? undefined : cleanContentType(req.headers['content-type']);
    if (row.contentType !== 'application/octet-stream' && (type === undefined || !sameMediaType(type, row.contentType))) {
      return reply(res, 415, `Content-Type must be ${row.contentType}`, close);
    }
    this.busy.add(row.id);
    try {
      await mkdir(this.opts.dir, { recursive: true });
      const part = join(this.opts.dir, `${row.id}.${randomBytes(6).toString('hex')}.part`);
      const ok = await this.receive(req, part, row.size);
      if (!ok) {
        await rm(part, { force: true });
        return reply(res, 400, `the body must be ${row.size} bytes`, close);
      }
      await rename(part, this.filePath(row.id));
      if (!(await this.opts.store.markUploaded(row.id, Date.now()))) return reply(res, 409, 'this slot was already used', close);
      res.writeHead(201, { ...CORS, 'content-length': '0' }).end();
    } finally {
      this.busy.delete(row.id);
    }
  }

  /** Streams the body to `file`; false when it is not exactly `size` bytes or the client went away. */
  private receive(req: IncomingMessage, file: string, size: number): Promise<boolean> {
    return new Promise((resolve) => {
      const out = createWriteStream(file, { flags: 'wx' });
      let received = 0;
      let done = false;
      const finish = (ok: boolean) => {
        if (done) return;
        done = true;
        req.unpipe(out);
        if (ok) {
          out.end(() => resolve(true));
          return;
        }
        out.once('close', () => resolve(false));
        out.destroy();
        req.resume();
      };
      req.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > size) finish(false);
      });
      req.once('end', () => {
        if (done) return;
        // Wait for the last writes before declaring the file complete.
        done = true;
        out.end(() => resolve(received === size));
      });
      req.once('aborted', () => finish(false));
      req.once('close', () => {
        if (!req.complete) finish(false);
      });
      req.once('error', () => finish(false));
      out.once('error', () => finish(false));
      req.pipe(out, { end: false });
    });
  }
}
