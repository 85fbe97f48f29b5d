// XEP-0363 HTTP File Upload (urn:xmpp:http:upload:0) on the service upload.<host>: local users
// request a slot over XMPP, PUT the file to a signed, expiring URL on Parley's HTTP listeners,
// and share the GET URL. Files expire after `expireAfter`.
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { buildForm, cloneElement, defineModule, duration, Jid, NS, size, StanzaError, xml, z } from '../../lib/module-api.js';
import type { Element, IqStanza, Stanza } from '../../lib/module-api.js';
import disco from '../disco/index.js';
import { UploadStore, uploadMigrations } from './store.js';
import { UploadHttp } from './http.js';
import { checkSharedDir } from './shared-dir.js';
import { UPLOAD_PATH, cleanContentType, cleanFilename, newSlotId, sign } from './slots.js';

export const NS_UPLOAD = 'urn:xmpp:http:upload:0';

/** Rows deleted per batch by the expiry sweep, so that one sweep never holds the database long. */
const BATCH = 100;

export interface UploadApi {
  /** The service's domain (upload.<host>). */
  readonly domain: string;
  /** Where files are stored. */
  readonly dir: string;
  /** Deletes expired files and unused slots; returns how many. */
  expire(now?: number): Promise<number>;
}

function fileTooLarge(max: number): StanzaError {
  // §5: the limit, so that the client can tell its user.
  return StanzaError.notAcceptable(
    `the file is larger than ${max} bytes`,
    xml('file-too-large', { xmlns: NS_UPLOAD }, xml('max-file-size', {}, String(max))),
  );
}

function errorReply(original: Element, err: StanzaError, from: string): Element {
  return xml(original.name, { type: 'error', id: original.attrs.id as string | undefined, from, to: original.attrs.from as string | undefined }, err.toElement());
}

export default defineModule({
  name: 'upload',
  xeps: [{ xep: 363, version: '1.1.0', status: 'complete', note: 'files served by Parley over its http/https listeners' }],
  defaultEnabled: true,
  optional: [disco],
  migrations: uploadMigrations,
  config: z.strictObject({
    /** The service's domain; default upload.<host>. */
    domain: z.string().min(1).optional(),
    /** Its name in service discovery. */
    name: z.string().min(1).default('HTTP File Upload'),
    /** Largest file accepted (advertised as max-file-size). */
    maxFileSize: size().prefault('10 MiB'),
    /** Bytes of stored files per account. */
    quota: size().prefault('1 GiB'),
    /** Files are deleted this long after their upload slot was requested. */
    expireAfter: duration().prefault('30d'),
    /** How long a slot's PUT URL stays valid. */
    slotLifetime: duration().prefault('5m'),
    /** Where files are kept; relative paths are under the server's storageDir. */
    path: z.string().min(1).default('uploads'),
    /**
     * The base URL of the links handed out (a reverse proxy in front of Parley's http listener,
     * say); default http.publicUrl, else http://<host>:<port> of the first http/https listener.
     */
    url: z.url({ protocol: /^https?$/ }).optional(),
  }),
  async setup(ctx): Promise<UploadApi> {
    const cfg = ctx.config;
    const domain = Jid.parse(cfg.domain ?? `upload.${ctx.host}`).domain;
    const dir = isAbsolute(cfg.path) ? cfg.path : resolve(ctx.server.storageDir ?? resolve('data'), cfg.path);
    const store = new UploadStore(ctx.storage, ctx.host);
    const keyval = ctx.keyval('upload');
    if (ctx.server.cluster) await checkSharedDir(dir, ctx.host, keyval);

    // The HMAC key of PUT URLs: made on first start, shared by every node through storage.
    let secret: Promise<Buffer> | undefined;
    const getSecret = (): Promise<Buffer> => {
      secret ??= (async () => {
        let value = await keyval.get(ctx.host, '', 'secret');
        if (value === undefined) {
          await keyval.set(ctx.host, '', 'secret', randomBytes(32).toString('base64'));
          // Read back: another node may have written its own first.
          value = (await keyval.get(ctx.host, '', 'secret'))!;
        }
        return Buffer.from(value, 'base64');
      })();
      secret.catch(() => { secret = undefined; });
      return secret;
    };

    const http = new UploadHttp({ store, dir, secret: getSecret, log: ctx.log });
    ctx.http.route({ methods: ['GET', 'HEAD', 'PUT', 'OPTIONS'], pathPrefix: UPLOAD_PATH }, http.handle);

    const form = buildForm('result', [{ var: 'max-file-size', values: [String(cfg.maxFileSize)] }], { formType: NS_UPLOAD });
    if (ctx.deps.has(disco)) {
      ctx.deps.get(disco).addItemsProvider({ target: 'host' }, () => [{ jid: domain, name: cfg.name }]);
    }

    function discoInfo(iq: IqStanza): Element | StanzaError {
      if (iq.payload!.attrs.node) return StanzaError.itemNotFound();
      return xml(
        'query',
        { xmlns: NS.discoInfo },
        xml('identity', { category: 'store', type: 'file', name: cfg.name }),
        xml('feature', { var: NS.discoInfo }),
        xml('feature', { var: NS_UPLOAD }),
        cloneElement(form),
      );
    }

    async function requestSlot(iq: IqStanza): Promise<Element | StanzaError> {
      const from = iq.from;
      // Only this host's own users store files here.
      if (from.domain !== ctx.host || from.local === undefined) return StanzaError.forbidden('only local users may upload files here');
      const grant = ctx.access.decide('upload', { jid: from });
      if (!grant.allowed) return StanzaError.forbidden('you may not upload files here');
      const el = iq.payload!;
      const rawName = el.attrs.filename;
      const rawSize = el.attrs.size;
      if (typeof rawName !== 'string' || typeof rawSize !== 'string') return StanzaError.badRequest('filename and size are required');
      const filename = cleanFilename(rawName);
      if (filename === undefined) return StanzaError.badRequest('bad filename');
      if (!/^\d{1,15}$/.test(rawSize)) return StanzaError.badRequest('size must be a number of bytes');
      const bytes = Number(rawSize);
      if (bytes <= 0) return StanzaError.badRequest('empty files are not accepted');
      const rawType = el.attrs['content-type'];
      let contentType = 'application/octet-stream';
      if (typeof rawType === 'string' && rawType !== '') {
        const t = cleanContentType(rawType);
        if (t === undefined) return StanzaError.badRequest('bad content-type');
        contentType = t;
      }
      const maxFileSize = Math.min(cfg.maxFileSize, grant.maxFileSize ?? Infinity);
      if (bytes > maxFileSize) return fileTooLarge(maxFileSize);
      const now = Date.now();
      const used = await store.used(from.local, now - cfg.slotLifetime);
      if (used + bytes > cfg.quota) return StanzaError.resourceConstraint('your upload quota is used up; old files expire over time');
      const base = (cfg.url ?? ctx.http.baseUrl())?.replace(/\/+$/, '');
      if (base === undefined) return StanzaError.serviceUnavailable('no http listener to upload to');
      const id = newSlotId();
      await store.insert({ id, user: from.local, filename, size: bytes, contentType, createdAt: now });
      const expires = Math.floor((now + cfg.slotLifetime) / 1000);
      const sig = sign(await getSecret(), id, filename, bytes, contentType, expires);
      const path = `${UPLOAD_PATH}${id}/${encodeURIComponent(filename)}`;
      return xml(
        'slot',
        { xmlns: NS_UPLOAD },
        xml('put', { url: `${base}${path}?e=${expires}&s=${sig}` }),
        xml('get', { url: `${base}${path}` }),
      );
    }

    async function answer(iq: IqStanza): Promise<Element | StanzaError | undefined> {
      const p = iq.payload;
      if (!p) return StanzaError.badRequest();
      const ns = p.attrs.xmlns;
      if (iq.type === 'get' && ns === NS.discoInfo && p.name === 'query') return discoInfo(iq);
      if (iq.type === 'get' && ns === NS.discoItems && p.name === 'query') return p.attrs.node ? StanzaError.itemNotFound() : xml('query', { xmlns: NS.discoItems });
      if (iq.type === 'get' && ns === NS_UPLOAD && p.name === 'request') return requestSlot(iq);
      return StanzaError.serviceUnavailable();
    }

    async function handle(stanza: Stanza): Promise<void> {
      if (stanza.kind !== 'iq') {
        // RFC 6120 §8.3.1: never answer an error with an error; presence is not for us.
        if (stanza.kind === 'message' && stanza.type !== 'error') await ctx.send(errorReply(stanza.el, StanzaError.serviceUnavailable(), domain));
        return;
      }
      if (stanza.type !== 'get' && stanza.type !== 'set') return;
      let result: Element | StanzaError | undefined;
      try {
        // The service's own JID only: upload.<host>/x or x@upload.<host> is nobody.
        result = stanza.to?.local !== undefined || stanza.to?.resource !== undefined ? StanzaError.serviceUnavailable() : await answer(stanza);
      } catch (err) {
        ctx.log.error({ err, id: stanza.id }, 'upload: iq handler failed');
        result = StanzaError.internalServerError();
      }
      if (result instanceof StanzaError) return ctx.send(errorReply(stanza.el, result, stanza.to?.toString() ?? domain));
      await ctx.send(xml('iq', { type: 'result', id: stanza.id, from: stanza.to?.toString() ?? domain, to: stanza.from.toString() }, result ?? null));
    }
    ctx.service(domain, handle);

    async function removeFiles(ids: readonly string[]): Promise<void> {
      for (const id of ids) await rm(http.filePath(id), { force: true });
      await store.delete(ids);
    }

    async function expire(now = Date.now()): Promise<number> {
      let removed = 0;
      for (;;) {
        const ids = await store.expired(now - cfg.expireAfter, now - cfg.slotLifetime, BATCH);
        await removeFiles(ids);
        removed += ids.length;
        if (ids.length < BATCH) return removed;
        // Let other work run between batches.
        await new Promise<void>((r) => setImmediate(r));
      }
    }
    ctx.setInterval(() => {
      expire().catch((err: unknown) => ctx.log.error({ err }, 'upload: expiry sweep failed'));
    }, Math.min(3_600_000, Math.max(1_000, Math.floor(cfg.expireAfter / 4))));

    // ARCHITECTURE §7: a deleted account's files go.
    ctx.on('account/deleted', async ({ host, user }) => {
      if (host !== ctx.host) return;
      for (let ids: string[]; (ids = await store.ofUser(user, BATCH)).length > 0; ) await removeFiles(ids);
    });

    return { domain, dir, expire };
  },
});
