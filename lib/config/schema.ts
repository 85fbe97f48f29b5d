// The root config schema (ARCHITECTURE §9). Module options are validated separately, by each
// module's own schema, in load.ts; here `modules` only has to be "options or false".
import { z } from 'zod';
import { Jid } from '../jid/jid.js';
import { parseDuration, parseSize } from './units.js';
import { accessSchema, rolesSchema } from '../acl/schema.js';
import { adminLockout } from '../acl/engine.js';

/** A duration: `30s`, `5m`, `2h`, `7d` or a number of milliseconds → milliseconds. */
export function duration() {
  return z.unknown().transform((value, ctx): number => {
    try {
      return parseDuration(value);
    } catch (err) {
      ctx.issues.push({ code: 'custom', message: (err as Error).message, input: value });
      return z.NEVER;
    }
  });
}

/** A size: `256 KiB`, `10 MiB`, `1MB` or a number of bytes → bytes. */
export function size() {
  return z.unknown().transform((value, ctx): number => {
    try {
      return parseSize(value);
    } catch (err) {
      ctx.issues.push({ code: 'custom', message: (err as Error).message, input: value });
      return z.NEVER;
    }
  });
}

/** A domain name (prepared: lowercased, IDNA-checked, no trailing dot). */
export const domainName = z.string().transform((value, ctx): string => {
  try {
    const jid = Jid.parse(value.trim());
    if (jid.local !== undefined || jid.resource !== undefined) {
      ctx.issues.push({ code: 'custom', message: `"${value}" is a JID, not a domain name`, input: value });
      return z.NEVER;
    }
    return jid.domain;
  } catch (err) {
    ctx.issues.push({ code: 'custom', message: `"${value}" is not a valid domain name: ${(err as Error).message}`, input: value });
    return z.NEVER;
  }
});

/** A bare JID with a localpart (`admin@example.com`), prepared. */
export const bareJid = z.string().transform((value, ctx): string => {
  try {
    const jid = Jid.parse(value.trim());
    if (jid.local === undefined || jid.resource !== undefined) {
      ctx.issues.push({ code: 'custom', message: `"${value}" must be a bare JID like admin@example.com`, input: value });
      return z.NEVER;
    }
    return jid.toString();
  } catch (err) {
    ctx.issues.push({ code: 'custom', message: `"${value}" is not a valid JID: ${(err as Error).message}`, input: value });
    return z.NEVER;
  }
});

/** A module's options (validated later by the module's schema), or `false` to disable it. */
export type ModuleSetting = false | Record<string, unknown>;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// `ping:` with nothing after it (null) or `ping: true` enables a module with its defaults.
const moduleSetting = z.unknown().transform((value, ctx): ModuleSetting => {
  if (value === false) return false;
  if (value === null || value === true || value === undefined) return {};
  if (isPlainObject(value)) return value;
  ctx.issues.push({
    code: 'custom',
    message: 'expected the module\'s options (a mapping), or false to disable it',
    input: value,
  });
  return z.NEVER;
});

export const moduleSettings = z.record(z.string(), moduleSetting);

const hostEntry = z.preprocess(
  (value) => (typeof value === 'string' ? { domain: value } : value),
  z.strictObject(
    {
      domain: domainName,
      modules: moduleSettings.default({}),
    },
    { error: (issue) => (issue.code === 'invalid_type' ? 'expected a domain name, or a mapping with domain: and modules:' : undefined) },
  ),
);

export const LISTENER_TYPES = ['c2s', 'c2s-tls', 's2s', 's2s-tls', 'http', 'https', 'component'] as const;
export type ListenerType = (typeof LISTENER_TYPES)[number];

// XEP-0114: a component this listener accepts; a bare domain uses the listener's secret.
const componentEntry = z.preprocess(
  (value) => (typeof value === 'string' ? { domain: value } : value),
  z.strictObject(
    { domain: domainName, secret: z.string().min(1).optional() },
    { error: (issue) => (issue.code === 'invalid_type' ? 'expected a domain, or a mapping with domain: and secret:' : undefined) },
  ),
);

const listener = z
  .strictObject({
    type: z.enum(LISTENER_TYPES),
    port: z.number().int().min(0).max(65535),
    // 0.0.0.0 rather than :: so the default also binds on hosts without IPv6.
    address: z.string().min(1).default('0.0.0.0'),
    // XEP-0114: the shared secret of an external component.
    secret: z.string().min(1).optional(),
    // XEP-0114: the component domains this listener accepts (a component names its domain in
    // its stream header; any other domain is refused).
    components: z.array(componentEntry).optional(),
  })
  .superRefine((value, ctx) => {
    if (value.type === 'component' && value.secret === undefined && !(value.components?.length && value.components.every((c) => c.secret !== undefined))) {
      ctx.addIssue({ code: 'custom', path: ['secret'], message: 'a component listener needs a secret' });
    }
    if (value.type === 'component' && !value.components?.length) {
      ctx.addIssue({ code: 'custom', path: ['components'], message: 'list the component domains this listener accepts, e.g. components: [bot.example.com]' });
    }
    if (value.type !== 'component' && value.secret !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['secret'], message: `only component listeners take a secret, not ${value.type}` });
    }
    if (value.type !== 'component' && value.components !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['components'], message: `only component listeners take components, not ${value.type}` });
    }
  });

export type ListenerConfig = z.output<typeof listener>;

export const DEFAULT_LISTENERS: ReadonlyArray<z.input<typeof listener>> = [
  { type: 'c2s', port: 5222 },
  { type: 'c2s-tls', port: 5223 },
  { type: 'http', port: 5280 },
];

const tls = z.strictObject({
  /** Directory with <domain>.crt and <domain>.key (or certbot's <domain>/fullchain.pem). */
  certificates: z.string().min(1).default('certs'),
  /** Explicit per-domain files, overriding the directory lookup. */
  hosts: z.record(z.string(), z.strictObject({ cert: z.string().min(1), key: z.string().min(1) })).optional(),
  /** Write a self-signed pair on first run when a domain has none. */
  generate: z.boolean().default(false),
  /** c2s clients must STARTTLS before authenticating. */
  requireEncryption: z.boolean().default(true),
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
});

const storage = z.discriminatedUnion('driver', [
  z.strictObject({ driver: z.literal('sqlite'), path: z.string().min(1).default('data/parley.db') }),
  z.strictObject({ driver: z.literal('postgres'), url: z.string().min(1), pool: z.number().int().min(1).max(1000).default(10) }),
]);

const positiveInt = z.number().int().positive();

const auth = z.strictObject({
  scramIterations: z.number().int().min(4096).default(10000),
  allowPlain: z.boolean().default(true),
  throttle: z
    .strictObject({
      accountFailures: positiveInt.default(5),
      ipFailures: positiveInt.default(20),
      window: duration().prefault('5m'),
      /** A failed login is answered after this, doubled per further failure in the window; 0 s: at once. */
      failureDelay: duration().prefault('250ms'),
      /** The longest wait before a failed login is answered. */
      maxFailureDelay: duration().prefault('4s'),
    })
    .prefault({}),
});

const limits = z.strictObject({
  stanzaSize: size().prefault('256 KiB'),
  preAuthStanzaSize: size().prefault('16 KiB'),
  depth: positiveInt.default(64),
  attributes: positiveInt.default(64),
  connectionsPerIp: positiveInt.default(64),
  /** New client connections one address may open per minute (bursts of as many); more are refused. */
  newConnectionsPerIpPerMinute: positiveInt.default(120),
  unauthenticatedTimeout: duration().prefault('30s'),
  idleTimeout: duration().optional(),
  inboundQueue: positiveInt.default(256),
  outboundBuffer: size().prefault('1 MiB'),
  sessionsPerAccount: positiveInt.default(32),
  /** Per session; bursts up to twice this. */
  stanzasPerSecond: positiveInt.default(100),
  bytesPerSecond: size().prefault('256 KiB'),
});

// ---------------------------------------------------------------- federation (RFC 6120 s2s)

/** `host:port` or `[v6]:port` (port defaults to 5269), or a mapping with directTls. */
const s2sTarget = z.union([
  z.string().transform((value, ctx): { host: string; port: number; directTls: boolean } => {
    const m = /^(?:\[([^\]]+)\]|([^:\s]+))(?::(\d{1,5}))?$/.exec(value.trim());
    const port = m?.[3] === undefined ? 5269 : Number(m[3]);
    if (!m || port < 1 || port > 65535) {
      ctx.issues.push({ code: 'custom', message: `"${value}" is not host:port (e.g. 127.0.0.1:5269)`, input: value });
      return z.NEVER;
    }
    return { host: (m[1] ?? m[2])!, port, directTls: false };
  }),
  z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(5269),
    /** XEP-0368: TLS from the first byte instead of STARTTLS. */
    directTls: z.boolean().default(false),
  }),
]);

const s2s = z.strictObject({
  /** Servers must use TLS, both ways. */
  requireEncryption: z.boolean().default(true),
  /** Only servers with a certificate valid for their domain (no dialback over self-signed TLS). */
  requireValidCertificates: z.boolean().default(false),
  /** Verify servers without a valid certificate by XEP-0220 dialback. */
  dialback: z.boolean().default(true),
  /** Close a server connection silent this long; it reopens when needed. */
  idleTimeout: duration().prefault('10m'),
  /** Give up connecting to a server (DNS, TCP and TLS) after this long. */
  connectTimeout: duration().prefault('10s'),
  /** Stanzas held per remote domain while its connection is set up. */
  queueLimit: positiveInt.default(100),
  /** PEM files of CAs trusted for server certificates, besides the built-in (Mozilla) ones. */
  trustedCAs: z.array(z.string().min(1)).default([]),
  /** Where to connect for a domain, instead of asking DNS (tests, private federations). */
  resolver: z.strictObject({ hosts: z.record(z.string(), s2sTarget).default({}) }).prefault({}),
  /** Domains (and their subdomains) this server exchanges nothing with: abusive servers. */
  blockedDomains: z.array(domainName).max(100_000).default([]),
});

export type S2sConfig = z.output<typeof s2s>;

const log = z.strictObject({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
  pretty: z.union([z.literal('auto'), z.boolean()], { error: 'must be auto, true or false' }).default('auto'),
});

/** A browser origin (`https://app.example.com`, no path) or `*` for any. */
const origin = z.string().transform((value, ctx): string => {
  if (value === '*') return value;
  try {
    const url = new URL(value);
    if ((url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value.replace(/\/$/, '')) return url.origin;
  } catch {
    // reported below
  }
  ctx.issues.push({ code: 'custom', message: `"${value}" is not an origin like https://app.example.com (scheme, host and port only), or *`, input: value });
  return z.NEVER;
});

/** Paths the HTTP listener serves itself; the web client may not take one of them. */
export const RESERVED_HTTP_PATHS = ['/', '/metrics', '/xmpp-websocket', '/http-bind', '/.well-known'] as const;

const webClientPath = z
  .string()
  .regex(/^(\/[A-Za-z0-9._~-]+)+$/, { message: 'expected a path like /chat (letters, digits, . _ ~ -; no trailing slash)' })
  .refine((p) => !RESERVED_HTTP_PATHS.some((r) => r !== '/' && (p === r || p.startsWith(`${r}/`))), {
    message: `must not be one of ${RESERVED_HTTP_PATHS.filter((r) => r !== '/').join(', ')}`,
  });

const http = z.strictObject({
  publicUrl: z.url({ protocol: /^https?$/ }).optional(),
  metrics: z.boolean().default(true),
  /** RFC 7395 at /xmpp-websocket. */
  websocket: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Browser origins allowed besides the server's own (see README "Web"); `*` allows any. */
      origins: z.array(origin).default([]),
      /** WebSocket ping period; a connection that misses a pong for one period is closed. */
      pingInterval: duration().prefault('30s'),
    })
    .prefault({}),
  /** XEP-0124/XEP-0206 at /http-bind. */
  bosh: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Longest a request is held waiting for data (the client asks; this caps it). */
      maxWait: duration().prefault('60s'),
      /** Most requests held at once per session. */
      maxHold: z.number().int().min(0).default(1),
      /** Most requests a client may have open at once per session (more than maxHold). */
      maxRequests: z.number().int().min(1).default(2),
      /** A session with no request for this long is ended. */
      inactivity: duration().prefault('60s'),
      /** Longest a client may pause a session (XEP-0124 §10). */
      maxPause: duration().prefault('120s'),
    })
    .prefault({})
    .refine((b) => b.maxRequests > b.maxHold, { message: 'maxRequests must be larger than maxHold', path: ['maxRequests'] }),
  /** The built-in web client (Converse.js). */
  webClient: z
    .strictObject({
      enabled: z.boolean().default(true),
      path: webClientPath.default('/chat'),
    })
    .prefault({}),
  /** Bounds on every HTTP request. */
  limits: z
    .strictObject({
      bodySize: size().prefault('1 MiB'),
      headerSize: size().prefault('16 KiB'),
      /** Requests in progress from one IP address (held BOSH requests count). */
      requestsPerIp: z.number().int().positive().default(128),
      /** Time to receive a whole request, headers and body. */
      requestTimeout: duration().prefault('30s'),
      headersTimeout: duration().prefault('10s'),
    })
    .prefault({}),
});

export type HttpConfig = z.output<typeof http>;

/** The HTTP admin API (/admin/api/) and the web admin (/admin/) on the http/https listeners. */
const adminHttp = z.strictObject({
  /** The admin API (/admin/api/) and the web admin (/admin/). */
  enabled: z.boolean().default(true),
  /** Every user's self-service pages (/account/), on their own switch. */
  accountPages: z.boolean().default(true),
  /** A web admin session ends after this long without a request. */
  sessionTimeout: duration().prefault('30m'),
  /** Web admin sessions held at once; the oldest ends when more log in. */
  maxSessions: positiveInt.default(50),
  /** Self-service (/account/) sessions held at once, of all users; the oldest ends when more log in. */
  accountSessions: positiveInt.default(2000),
});

const uri = z.string().refine(
  (value) => {
    try {
      new URL(value);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'expected a URI like mailto:abuse@example.com or xmpp:abuse@example.com' },
);
// A single address may be written without the list brackets.
const uriList = z.preprocess((value) => (typeof value === 'string' ? [value] : value), z.array(uri)).optional();

/** XEP-0157 contact addresses, published in the server's disco#info. */
const contact = z.strictObject({
  abuse: uriList,
  admin: uriList,
  security: uriList,
  support: uriList,
  feedback: uriList,
  sales: uriList,
});

/** Cluster mode: nodes sharing one Redis (directory, routes) and one PostgreSQL. */
const cluster = z.strictObject({
  /** The Redis every node of the cluster uses, e.g. redis://127.0.0.1:6379/0. */
  redis: z.string().regex(/^rediss?:\/\//, { error: 'expected a URL like redis://127.0.0.1:6379' }),
  /** This node's name, unique in the cluster (`parley start --nodes N` appends -1, -2, ...). */
  node: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: 'expected 1-64 letters, digits, dot, dash or underscore' }),
  /** Prefix of every Redis key, so that several clusters may share one Redis. */
  prefix: z.string().min(1).default('parley:'),
  /** How often this node renews its heartbeat. */
  heartbeat: duration().prefault('2s'),
  /** A node whose heartbeat is older than this is dead: its sessions are removed, its contacts told. */
  expiry: duration().prefault('6s'),
  /** host:port clients are sent to (see-other-host) to resume a session kept on this node. */
  seeOtherHost: z.string().min(1).optional(),
  /** Stanzas kept in each node's inbound Redis stream (older ones are trimmed). */
  inboxLength: z.number().int().positive().default(100_000),
});

export const configSchema = z.strictObject({
  hosts: z.array(hostEntry, {
    error: (issue) => (issue.input === undefined ? 'required: the domains this server serves, e.g. hosts: [example.com]' : undefined),
  }).min(1, { error: 'needs at least one domain, e.g. hosts: [example.com]' }),
  listeners: z.array(listener).prefault(() => DEFAULT_LISTENERS.map((l) => ({ ...l }))),
  tls: tls.prefault({}),
  storage: storage.prefault({ driver: 'sqlite' }),
  /** Where modules keep files (uploads, ...); relative to the config file. */
  storageDir: z.string().min(1).default('data'),
  auth: auth.prefault({}),
  limits: limits.prefault({}),
  s2s: s2s.prefault({}),
  log: log.prefault({}),
  modules: moduleSettings.default({}),
  http: http.prefault({}),
  admins: z.array(bareJid).default([]),
  /** Role members beside `admins:` (README "Security"). */
  roles: rolesSchema.prefault({}),
  /** Access rules per enforcement point (lib/acl/schema.ts). */
  access: accessSchema.prefault({}),
  contact: contact.prefault({}),
  adminHttp: adminHttp.prefault({}),
  // An empty `cluster:` (every option commented out) is off.
  cluster: z.preprocess((v) => (v === null ? undefined : v), cluster.optional()),
}).superRefine((config, ctx) => {
  const hosts = config.hosts.map((h) => (typeof h === 'string' ? h : h.domain));
  const lockout = adminLockout(config.access, config.roles, config.admins, hosts, (j) => Jid.parse(j));
  if (lockout) ctx.addIssue({ code: 'custom', path: ['access', 'admin'], message: lockout });
});

/**
 * The validated, normalised config. After `parseConfig`/`loadConfig`:
 * - `modules[name]` holds every known module: its parsed options (defaults applied) when enabled
 *   server-wide, `false` when disabled;
 * - `hosts[i].modules[name]` holds only the modules that host overrides: the effective options
 *   (server-wide options merged with the host's, parsed) or `false`;
 * - relative paths (`tls.certificates`, `tls.hosts.*`, `storage.path`, `storageDir`) are absolute.
 * Use `resolveModules` for the per-host list of enabled modules.
 */
export type ParleyConfig = z.output<typeof configSchema>;
export type TlsConfig = ParleyConfig['tls'];
export type HostConfig = ParleyConfig['hosts'][number];
