// The module boundary (ARCHITECTURE.md §3): a module reaches the core only through
// lib/module-api.ts and another module only through its index.ts (the module object, for
// `requires`/`optional`) or its api.ts (the types and helpers it offers). Everything else —
// the core's internals, another module's private files — is a violation.
import { posix } from 'node:path';
import { moduleSpecifiers } from './module-specifiers.js';

export interface BoundaryViolation {
  /** Repository-relative path of the importing file, e.g. `modules/pep/caps.ts`. */
  file: string;
  line: number;
  specifier: string;
  reason: string;
}

const MODULE_API = 'lib/module-api.js';
const PUBLIC_MODULE_FILES = new Set(['index.js', 'api.js']);

function checkSpecifier(file: string, specifier: string): string | undefined {
  if (specifier.startsWith('node:')) return undefined;
  if (!specifier.startsWith('.') && !specifier.startsWith('/')) {
    // A bare name: an npm package (or a Node builtin written without `node:`).
    return undefined;
  }
  if (specifier.startsWith('/')) return 'absolute paths are not allowed; import through lib/module-api.js';
  const target = posix.normalize(posix.join(posix.dirname(file), specifier));
  const [fromRoot, fromModule] = file.split('/');
  const [toRoot, toModule, ...rest] = target.split('/');
  if (toRoot === 'lib') {
    return target === MODULE_API ? undefined : `modules may import from lib/ only ${MODULE_API}`;
  }
  if (toRoot !== fromRoot || toModule === undefined) {
    return 'modules may import only lib/module-api.js, their own files and other modules\' index.js or api.js';
  }
  if (toModule === fromModule) return undefined;
  if (rest.length === 1 && PUBLIC_MODULE_FILES.has(rest[0]!)) return undefined;
  return `another module is reached only through its index.js or api.js, not ${target}`;
}

/** Checks one module source file; `file` is its repository-relative path (`modules/<name>/…`). */
export function moduleBoundaryViolations(file: string, source: string): BoundaryViolation[] {
  const violations: BoundaryViolation[] = [];
  for (const { specifier, line } of moduleSpecifiers(source)) {
    const reason = checkSpecifier(file, specifier);
    if (reason !== undefined) violations.push({ file, line, specifier, reason });
  }
  return violations;
}

export function formatViolation(v: BoundaryViolation): string {
  return `${v.file}:${v.line} imports '${v.specifier}': ${v.reason}`;
}
