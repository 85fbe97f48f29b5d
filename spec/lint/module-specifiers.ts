// Reads the module specifiers of a TypeScript source: static imports and re-exports, side-effect
// imports, `import x = require()` and dynamic `import()` with a literal argument. The project's
// TypeScript (7, the native compiler) has no JS parser API, so this is a small lexer: it skips
// comments, strings and template literals first so that an `import` inside them never counts.

export interface SpecifierUse {
  specifier: string;
  /** 1-based line of the specifier. */
  line: number;
}

/** Replaces comments by spaces and string/template contents by a placeholder, keeping offsets. */
function maskNonCode(source: string): { code: string; strings: Map<number, string> } {
  const out = source.split('');
  const strings = new Map<number, string>();
  let i = 0;
  const blank = (from: number, to: number): void => {
    for (let k = from; k < to; k++) if (out[k] !== '\n') out[k] = ' ';
  };
  const templateDepth: number[] = [];
  let braceDepth = 0;
  while (i < source.length) {
    const c = source[i];
    const next = source[i + 1];
    if (c === '/' && next === '/') {
      const end = source.indexOf('\n', i);
      const stop = end === -1 ? source.length : end;
      blank(i, stop);
      i = stop;
    } else if (c === '/' && next === '*') {
      const end = source.indexOf('*/', i + 2);
      const stop = end === -1 ? source.length : end + 2;
      blank(i, stop);
      i = stop;
    } else if (c === '\'' || c === '"') {
      let k = i + 1;
      let value = '';
      while (k < source.length && source[k] !== c && source[k] !== '\n') {
        if (source[k] === '\\') { value += source[k + 1] ?? ''; k += 2; continue; }
        value += source[k];
        k++;
      }
      // The literal keeps its quotes; its contents become `_` so no keyword hides in it.
      strings.set(i, value);
      blank(i + 1, k);
      for (let m = i + 1; m < k; m++) if (out[m] !== '\n') out[m] = '_';
      i = k + 1;
    } else if (c === '`' || (c === '}' && templateDepth.length > 0 && templateDepth[templateDepth.length - 1] === braceDepth)) {
      if (c === '}') templateDepth.pop();
      // Inside a template literal up to its end or the next `${`.
      let k = i + 1;
      while (k < source.length && source[k] !== '`' && !(source[k] === '$' && source[k + 1] === '{')) {
        k += source[k] === '\\' ? 2 : 1;
      }
      blank(i + 1, Math.min(k, source.length));
      if (source[k] === '$') {
        templateDepth.push(braceDepth);
        i = k + 2;
      } else {
        i = k + 1;
      }
    } else {
      if (c === '{') braceDepth++;
      else if (c === '}') braceDepth--;
      i++;
    }
  }
  return { code: out.join(''), strings };
}

const STRING = String.raw`(['"])_*\1|(['"])\2`;
const PATTERNS: readonly RegExp[] = [
  // import x from '…', import { a } from '…', import type …, export { a } from '…', export * from '…'
  new RegExp(String.raw`\b(?:import|export)\b[^;'"\`]*?\bfrom\s*(${STRING})`, 'g'),
  // import '…' (side effects only)
  new RegExp(String.raw`\bimport\s*(${STRING})`, 'g'),
  // import('…') and import x = require('…')
  new RegExp(String.raw`\b(?:import|require)\s*\(\s*(${STRING})`, 'g'),
];

export function moduleSpecifiers(source: string): SpecifierUse[] {
  const { code, strings } = maskNonCode(source);
  const found = new Map<number, SpecifierUse>();
  for (const pattern of PATTERNS) {
    pattern.lastIndex = 0;
    for (let m = pattern.exec(code); m !== null; m = pattern.exec(code)) {
      const at = m.index + m[0].length - m[1]!.length;
      const specifier = strings.get(at);
      if (specifier === undefined || found.has(at)) continue;
      const line = code.slice(0, at).split('\n').length;
      found.set(at, { specifier, line });
    }
  }
  return [...found.entries()].sort((a, b) => a[0] - b[0]).map(([, use]) => use);
}
