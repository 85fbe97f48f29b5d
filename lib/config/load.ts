// Reads the YAML config, validates it against the root schema composed with every module's
// schema, and reports every problem at once with a path, a position and a hint (ARCHITECTURE §9).
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { didYouMeanHint } from './did-you-mean.js';
import { ConfigError, type ConfigIssue } from './errors.js';
import { configSchema, isPlainObject, type ModuleSetting, type ParleyConfig } from './schema.js';

/** What the loader needs to know about a module; the module catalog satisfies it. */
export interface ModuleDescriptor {
  readonly name: string;
  readonly config: z.ZodType;
  readonly defaultEnabled: boolean;
}

/** One enabled module on one host, with its effective options (defaults applied). */
export interface ResolvedModule {
  name: string;
  options: unknown;
}

type Path = ReadonlyArray<PropertyKey>;
/** Maps a config path to a 1-based position in the source file. `key` asks for the key's position. */
export type Locator = (path: Path, key?: boolean) => { line: number; col: number } | undefined;

/**
 * Reads and validates a YAML config file. Relative paths in it are resolved against the file's
 * directory. Throws a ConfigError listing every problem.
 */
export function loadConfig(path: string, modules: ReadonlyArray<ModuleDescriptor>): ParleyConfig {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(
      [
        code === 'ENOENT'
          ? { path: '', message: `config file ${file} does not exist`, hint: 'copy config/parley.example.yaml there, or pass --config FILE' }
          : { path: '', message: `cannot read config file ${file}: ${(err as Error).message}` },
      ],
      path,
    );
  }
  const lineCounter = new YAML.LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        // yaml's messages end with " at line L, column C" (and an excerpt); we print the position once.
        const message = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
        return { path: '', message: `YAML syntax error: ${message}`, line: pos.line, col: pos.col };
      }),
      path,
    );
  }
  const locate: Locator = (p, key) => locateNode(doc, lineCounter, p, key === true);
  try {
    return parseConfig(doc.toJS({ maxAliasCount: 100 }) as unknown, modules, dirname(file), locate);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(err.issues, path);
    throw err;
  }
}

/**
 * Validates a config object (as parsed from YAML). `baseDir` anchors relative paths.
 * Throws a ConfigError listing every problem.
 */
export function parseConfig(
  input: unknown,
  modules: ReadonlyArray<ModuleDescriptor>,
  baseDir: string,
  locate?: Locator,
): ParleyConfig {
  const top = input === null || input === undefined ? {} : input;
  if (!isPlainObject(top)) {
    throw new ConfigError([{ path: '', message: 'the config must be a mapping of settings (hosts:, listeners:, …)' }]);
  }
  // A section left empty in YAML (`tls:` with everything below commented out) is null: it
  // means "the defaults", like an absent section.
  const raw = Object.fromEntries(Object.entries(top).filter(([, value]) => value !== null));
  const issues: ConfigIssue[] = [];
  const add = (path: Path, message: string, hint?: string, key = false): void => {
    const pos = locate?.(path, key);
    issues.push({ path: formatPath(path), message, ...(hint === undefined ? {} : { hint }), ...(pos ?? {}) });
  };

  const root = configSchema.safeParse(raw, { error: friendlyMessage });
  if (!root.success) collectIssues(root.error.issues, configSchema, raw, [], add);
  crossCheck(raw, add);

  const catalog = new Map(modules.map((m) => [m.name, m]));
  const names = [...catalog.keys()];

  // Server-wide module options.
  const rawModules = isPlainObject(raw.modules) ? raw.modules : {};
  const globalSettings: Record<string, ModuleSetting> = {};
  for (const [name, value] of Object.entries(rawModules)) {
    if (!catalog.has(name)) add(['modules', name], 'unknown module', didYouMeanHint(name, names), true);
  }
  for (const mod of modules) {
    const value = rawModules[mod.name];
    if (value === false || (value === undefined && !mod.defaultEnabled)) {
      globalSettings[mod.name] = false;
      continue;
    }
    const options = settingOptions(value);
    if (options === undefined) continue; // not options nor false: the root schema reported it
    const parsed = parseModuleOptions(mod, options, ['modules', mod.name], add, () => true);
    if (parsed !== undefined) globalSettings[mod.name] = parsed;
  }

  // Per-host overrides: the host's options over the server-wide ones, through the same schema.
  const hostSettings: Array<Record<string, ModuleSetting>> = [];
  const rawHosts = Array.isArray(raw.hosts) ? (raw.hosts as unknown[]) : [];
  rawHosts.forEach((entry, i) => {
    const settings: Record<string, ModuleSetting> = {};
    hostSettings[i] = settings;
    if (!isPlainObject(entry) || !isPlainObject(entry.modules)) return;
    for (const [name, value] of Object.entries(entry.modules)) {
      const prefix = ['hosts', i, 'modules', name];
      const mod = catalog.get(name);
      if (mod === undefined) {
        add(prefix, 'unknown module', didYouMeanHint(name, names), true);
        continue;
      }
      if (value === false) {
        settings[name] = false;
        continue;
      }
      const own = settingOptions(value);
      if (own === undefined) continue;
      const globalOptions = settingOptions(rawModules[name]) ?? {};
      const globalValid = globalSettings[name] !== undefined;
      // Problems in the server-wide part are reported once, under modules.<name>.
      const fromHost = (rel: Path): boolean => globalValid || String(rel[0]) in own;
      const parsed = parseModuleOptions(mod, { ...globalOptions, ...own }, prefix, add, fromHost);
      if (parsed !== undefined) settings[name] = parsed;
    }
  });

  if (issues.length > 0 || !root.success) throw new ConfigError(sortIssues(issues));

  const config = root.data;
  config.modules = globalSettings;
  config.hosts.forEach((host, i) => {
    host.modules = hostSettings[i] ?? {};
  });
  return resolvePaths(config, baseDir);
}

/**
 * For each host, the enabled modules (in catalog order) with their effective options: the
 * host's override, else the server-wide setting, else the module's default.
 */
export function resolveModules(
  config: ParleyConfig,
  modules: ReadonlyArray<ModuleDescriptor>,
): Map<string, ResolvedModule[]> {
  const result = new Map<string, ResolvedModule[]>();
  for (const host of config.hosts) {
    const enabled: ResolvedModule[] = [];
    for (const mod of modules) {
      let setting: ModuleSetting | undefined = host.modules[mod.name] ?? config.modules[mod.name];
      if (setting === undefined) {
        if (!mod.defaultEnabled) continue;
        const parsed = mod.config.safeParse({}, { error: friendlyMessage });
        if (!parsed.success) {
          throw new ConfigError([{ path: `modules.${mod.name}`, message: 'this module needs options', hint: parsed.error.issues[0]?.message }]);
        }
        setting = parsed.data as Record<string, unknown>;
      }
      if (setting !== false) enabled.push({ name: mod.name, options: setting });
    }
    result.set(host.domain, enabled);
  }
  return result;
}

/** `['listeners', 0, 'port']` → `listeners[0].port`; keys that are not identifiers are quoted. */
export function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][\w-]*$/.test(String(seg))) out += out === '' ? String(seg) : `.${String(seg)}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

type Add = (path: Path, message: string, hint?: string, key?: boolean) => void;

function settingOptions(value: unknown): Record<string, unknown> | undefined {
  if (value === undefined || value === null || value === true) return {};
  return isPlainObject(value) ? value : undefined;
}

function parseModuleOptions(
  mod: ModuleDescriptor,
  options: Record<string, unknown>,
  prefix: Path,
  add: Add,
  keep: (relativePath: Path) => boolean,
): Record<string, unknown> | undefined {
  const parsed = mod.config.safeParse(options, { error: friendlyMessage });
  if (!parsed.success) {
    const filtered: Add = (path, message, hint, key) => {
      if (keep(path.slice(prefix.length))) add(path, message, hint, key);
    };
    collectIssues(parsed.error.issues, mod.config, options, prefix, filtered);
    return undefined;
  }
  if (!isPlainObject(parsed.data)) {
    add(prefix, `the ${mod.name} module's config schema must produce an object`);
    return undefined;
  }
  return parsed.data;
}

/** Turns zod issues into config issues, one per unknown key, with did-you-mean hints. */
function collectIssues(issues: z.core.$ZodIssue[], schema: z.ZodType, raw: unknown, prefix: Path, add: Add): void {
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    switch (issue.code) {
      case 'unrecognized_keys': {
        const known = knownKeys(schema, issue.path);
        for (const key of issue.keys) add([...path, key], 'unknown key', didYouMeanHint(key, known), true);
        break;
      }
      case 'invalid_value': {
        const value = valueAt(raw, issue.path);
        const hint = typeof value === 'string' ? didYouMeanHint(value, issue.values.map(String)) : undefined;
        add(path, issue.message, hint);
        break;
      }
      case 'invalid_union': {
        const value = valueAt(raw, issue.path);
        const options = 'options' in issue && issue.options !== undefined ? issue.options.map(String) : [];
        const hint = typeof value === 'string' ? didYouMeanHint(value, options) : undefined;
        add(path, issue.message, hint);
        break;
      }
      default:
        add(path, issue.message);
    }
  }
}

/** Readable messages for zod's built-in issues; a schema's own messages take precedence. */
function friendlyMessage(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'required';
      return `expected ${expectedName(issue.expected)}, got ${describeValue(issue.input)}`;
    case 'invalid_value':
      return issue.values.length === 1
        ? `must be ${JSON.stringify(issue.values[0])}`
        : `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_union':
      if (issue.discriminator !== undefined && 'options' in issue && Array.isArray(issue.options)) {
        return `must be one of ${issue.options.map((v) => JSON.stringify(v)).join(', ')}`;
      }
      return `not a valid value: got ${describeValue(issue.input)}`;
    case 'too_small': {
      const n = Number(issue.minimum);
      if (issue.origin === 'array') return `needs at least ${n} ${n === 1 ? 'entry' : 'entries'}`;
      if (issue.origin === 'string') return n === 1 ? 'must not be empty' : `must be at least ${n} characters`;
      return issue.inclusive === false ? `must be greater than ${n}` : `must be at least ${n}`;
    }
    case 'too_big': {
      const n = Number(issue.maximum);
      if (issue.origin === 'array') return `takes at most ${n} ${n === 1 ? 'entry' : 'entries'}`;
      if (issue.origin === 'string') return `must be at most ${n} characters`;
      return issue.inclusive === false ? `must be less than ${n}` : `must be at most ${n}`;
    }
    case 'invalid_format':
      return `must be a valid ${issue.format === 'url' ? 'URL' : issue.format}`;
    default:
      return undefined;
  }
}

function expectedName(expected: string): string {
  switch (expected) {
    case 'object':
    case 'record':
      return 'a mapping';
    case 'array':
    case 'tuple':
      return 'a list';
    case 'int':
      return 'an integer';
    case 'boolean':
      return 'true or false';
    default:
      return `a ${expected}`;
  }
}

function describeValue(value: unknown): string {
  if (value === null) return 'nothing (null)';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return String(value);
}

function valueAt(raw: unknown, path: Path): unknown {
  let node: unknown = raw;
  for (const seg of path) {
    if (Array.isArray(node) && typeof seg === 'number') node = node[seg];
    else if (isPlainObject(node)) node = node[String(seg)];
    else return undefined;
  }
  return node;
}

/** The keys an object schema accepts at `path`, for did-you-mean. */
function knownKeys(schema: z.ZodType, path: Path): string[] {
  let current: z.core.$ZodType[] = [schema];
  for (const seg of path) {
    const next: z.core.$ZodType[] = [];
    for (const s of current.flatMap(unwrap)) {
      const def = s._zod.def;
      if (def.type === 'object') {
        const child = (def as z.core.$ZodObjectDef).shape[String(seg)];
        if (child !== undefined) next.push(child);
      } else if (def.type === 'array' && typeof seg === 'number') {
        next.push((def as z.core.$ZodArrayDef).element);
      } else if (def.type === 'record') {
        next.push((def as z.core.$ZodRecordDef).valueType);
      }
    }
    current = next;
  }
  const keys = new Set<string>();
  for (const s of current.flatMap(unwrap)) {
    const def = s._zod.def;
    if (def.type === 'object') for (const k of Object.keys((def as z.core.$ZodObjectDef).shape)) keys.add(k);
  }
  return [...keys];
}

/** Sees through optional/default/pipe wrappers and unions, to the schemas that hold keys. */
function unwrap(schema: z.core.$ZodType): z.core.$ZodType[] {
  const def = schema._zod.def;
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'nonoptional':
    case 'readonly':
    case 'catch':
      return unwrap((def as z.core.$ZodOptionalDef).innerType);
    case 'lazy':
      return unwrap((def as z.core.$ZodLazyDef).getter());
    case 'pipe': {
      const pipe = def as z.core.$ZodPipeDef;
      // `.transform()` pipes keep the shape in `in`; `z.preprocess()` pipes keep it in `out`.
      return unwrap(pipe.in._zod.def.type === 'transform' ? pipe.out : pipe.in);
    }
    case 'union':
      return (def as z.core.$ZodUnionDef).options.flatMap(unwrap);
    case 'intersection': {
      const inter = def as z.core.$ZodIntersectionDef;
      return [...unwrap(inter.left), ...unwrap(inter.right)];
    }
    default:
      return [schema];
  }
}

/** Checks that span entries: duplicate hosts, two listeners on one address and port. */
function crossCheck(raw: Record<string, unknown>, add: Add): void {
  if (Array.isArray(raw.hosts)) {
    const seen = new Map<string, number>();
    raw.hosts.forEach((entry: unknown, i: number) => {
      const domain = typeof entry === 'string' ? entry : isPlainObject(entry) ? entry.domain : undefined;
      if (typeof domain !== 'string') return;
      const key = domain.trim().toLowerCase().replace(/\.$/, '');
      const first = seen.get(key);
      if (first !== undefined) add(['hosts', i], `${key} is listed twice (also hosts[${first}])`, 'list each domain once');
      else seen.set(key, i);
    });
  }
  if (Array.isArray(raw.listeners)) {
    const seen = new Map<string, number>();
    raw.listeners.forEach((entry: unknown, i: number) => {
      if (!isPlainObject(entry) || typeof entry.port !== 'number' || entry.port === 0) return;
      const address = typeof entry.address === 'string' ? entry.address : '0.0.0.0';
      const key = `${address}:${entry.port}`;
      const first = seen.get(key);
      if (first !== undefined) {
        add(['listeners', i, 'port'], `${address} port ${entry.port} is already used by listeners[${first}]`, 'give each listener its own port or address');
      } else seen.set(key, i);
    });
  }
}

function resolvePaths(config: ParleyConfig, baseDir: string): ParleyConfig {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  config.tls.certificates = abs(config.tls.certificates);
  config.storageDir = abs(config.storageDir);
  config.s2s.trustedCAs = config.s2s.trustedCAs.map(abs);
  if (config.tls.hosts !== undefined) {
    const hosts: Record<string, { cert: string; key: string }> = {};
    for (const [domain, files] of Object.entries(config.tls.hosts)) {
      hosts[domain.toLowerCase().replace(/\.$/, '')] = { cert: abs(files.cert), key: abs(files.key) };
    }
    config.tls.hosts = hosts;
  }
  if (config.storage.driver === 'sqlite' && config.storage.path !== ':memory:') {
    config.storage.path = abs(config.storage.path);
  }
  return config;
}

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  // Source order when positions are known; otherwise the order found (stable sort).
  return issues
    .map((issue, i) => ({ issue, i }))
    .sort((a, b) => (a.issue.line ?? Infinity) - (b.issue.line ?? Infinity) || (a.issue.col ?? 0) - (b.issue.col ?? 0) || a.i - b.i)
    .map(({ issue }) => issue);
}

function locateNode(doc: YAML.Document, lineCounter: YAML.LineCounter, path: Path, key: boolean): { line: number; col: number } | undefined {
  let node: unknown = doc.contents;
  let best: [number, number, number] | undefined = (node as { range?: [number, number, number] } | null)?.range ?? undefined;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    if (YAML.isAlias(node)) node = node.resolve(doc);
    if (YAML.isMap(node)) {
      const pair = node.items.find((p) => (YAML.isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
      if (pair === undefined) break;
      if (key && i === path.length - 1 && YAML.isNode(pair.key) && pair.key.range) {
        best = pair.key.range;
        break;
      }
      node = pair.value;
    } else if (YAML.isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
    } else break;
    if (YAML.isNode(node) && node.range) best = node.range;
    else break;
  }
  return best === undefined ? undefined : lineCounter.linePos(best[0]);
}
