// Serves files from one directory, and nothing outside it.
//
// The request path is decoded once and refused (404) when any segment is empty, `.` or `..`,
// starts with a dot, or holds a backslash, NUL or other control character; the joined path must
// still lie under the root after symlinks are resolved. Only regular files with a known type
// are served, with ETag/304 and the caller's Cache-Control.
import { createReadStream, realpathSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, sep } from 'node:path';

export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.ttf': 'font/ttf',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
};

const BAD_SEGMENT = /^\.|[\\\0-\x1f\x7f]/;

/** The decoded, checked path segments of `rel` (URL-encoded, without a leading slash), or undefined. */
export function safeSegments(rel: string): string[] | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rel);
  } catch {
    return undefined;
  }
  if (decoded === '') return undefined;
  const segments = decoded.split('/');
  for (const s of segments) if (s === '' || BAD_SEGMENT.test(s)) return undefined;
  return segments;
}

export class StaticFiles {
  private readonly root: string;

  constructor(root: string, private readonly cacheControl: string) {
    this.root = realpathSync(root);
  }

  /** Serves `rel` (the URL path below the mount point) or answers 404. */
  async serve(req: IncomingMessage, res: ServerResponse, rel: string): Promise<void> {
    const segments = safeSegments(rel);
    const type = segments ? CONTENT_TYPES[extname(segments[segments.length - 1]).toLowerCase()] : undefined;
    if (!segments || type === undefined) return notFound(res);
    let file: string;
    let size: number;
    let mtime: Date;
    try {
      file = await realpath(join(this.root, ...segments));
      if (!file.startsWith(this.root + sep)) return notFound(res);
      const st = await stat(file);
      if (!st.isFile()) return notFound(res);
      size = st.size;
      mtime = st.mtime;
    } catch {
      return notFound(res);
    }
    const etag = `W/"${size.toString(16)}-${Math.floor(mtime.getTime() / 1000).toString(16)}"`;
    const headers: Record<string, string> = {
      'content-type': type,
      'cache-control': this.cacheControl,
      etag,
      'last-modified': mtime.toUTCString(),
      'x-content-type-options': 'nosniff',
    };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers).end();
      return;
    }
    headers['content-length'] = String(size);
    res.writeHead(200, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const stream = createReadStream(file);
    stream.on('error', () => res.destroy());
    res.on('close', () => stream.destroy());
    stream.pipe(res);
  }
}

export function notFound(res: ServerResponse): void {
  if (res.headersSent) return void res.end();
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' }).end('not found\n');
}
