// Reads a XEP-0227 document as a stream and hands over one <user/> element at a time, with its
// host, so that an import of a whole server never holds more than one account in memory.
import { SaxesParser, type SaxesTagNS } from 'saxes';
import { Element } from '../xml/element.js';

/** The XEP-0227 root namespaces: the registered one, and the one older ejabberd releases wrote. */
export const PIE_ROOTS: readonly string[] = ['urn:xmpp:pie:0', 'http://www.xmpp.org/extensions/xep-0227.html#ns'];

export interface ReaderLimits {
  /** Bytes of one <user/> element (its archive included). */
  maxUserBytes: number;
  maxDepth: number;
}

export const DEFAULT_READER_LIMITS: ReaderLimits = { maxUserBytes: 512 * 1024 * 1024, maxDepth: 64 };

export class PieFormatError extends Error {}

export interface PieUser {
  host: string;
  user: Element;
}

/** Feed it text; collect the users it completed with `take()`. */
export class PieReader {
  private readonly parser = new SaxesParser({ xmlns: true, position: true });
  private readonly done: PieUser[] = [];
  private stack: Element[] = [];
  private depth = 0;
  private host: string | undefined;
  private userBytes = 0;
  private error: Error | undefined;
  private sawRoot = false;

  constructor(private readonly limits: ReaderLimits = DEFAULT_READER_LIMITS) {
    this.parser.on('doctype', () => this.fail('a DOCTYPE is not allowed'));
    this.parser.on('opentag', (tag) => this.open(tag as SaxesTagNS));
    this.parser.on('closetag', () => this.close());
    this.parser.on('text', (text) => this.text(text));
    this.parser.on('cdata', (text) => this.text(text));
    this.parser.on('error', (err) => this.fail(err.message));
  }

  write(chunk: string): void {
    if (this.error) throw this.error;
    this.userBytes += Buffer.byteLength(chunk, 'utf8');
    this.parser.write(chunk);
    if (this.error) throw this.error;
  }

  end(): void {
    if (this.error) throw this.error;
    this.parser.close();
    if (this.error) throw this.error;
    if (!this.sawRoot) throw new PieFormatError('no <server-data/> element: this is not a XEP-0227 file');
  }

  take(): PieUser[] {
    return this.done.splice(0, this.done.length);
  }

  private fail(message: string): void {
    this.error ??= new PieFormatError(`line ${this.parser.line}: ${message}`);
  }

  private open(tag: SaxesTagNS): void {
    this.depth++;
    if (this.depth > this.limits.maxDepth) return this.fail(`elements nested deeper than ${this.limits.maxDepth}`);
    const ns = tag.uri;
    if (this.depth === 1) {
      if (tag.local !== 'server-data' || !PIE_ROOTS.includes(ns)) return this.fail(`the root is <${tag.name}/>, not a XEP-0227 <server-data/>`);
      this.sawRoot = true;
      return;
    }
    if (this.depth === 2) {
      if (tag.local !== 'host' || !PIE_ROOTS.includes(ns)) return this.fail(`<${tag.name}/> in <server-data/> (only <host/> belongs there)`);
      const jid = tag.attributes.jid?.value;
      if (!jid) return this.fail('a <host/> without a jid');
      this.host = jid;
      return;
    }
    if (this.depth === 3) {
      if (tag.local !== 'user' || !PIE_ROOTS.includes(ns)) return this.fail(`<${tag.name}/> in <host/> (only <user/> belongs there)`);
      this.userBytes = 0;
    }
    const attrs: Record<string, string> = {};
    for (const a of Object.values(tag.attributes)) {
      // Namespace declarations are re-derived from the element namespaces.
      if (a.prefix === 'xmlns' || a.name === 'xmlns') continue;
      attrs[a.prefix ? `${a.prefix}:${a.local}` : a.local] = a.value;
    }
    const parent = this.stack[this.stack.length - 1];
    const parentNs = parent ? this.nsOf(parent) : undefined;
    if (ns !== parentNs && this.depth > 3) attrs.xmlns = ns;
    const el = new Element(tag.local, attrs);
    if (parent) parent.cnode(el);
    this.stack.push(el);
  }

  private nsOf(el: Element): string | undefined {
    for (let e: Element | null = el; e; e = e.parent as Element | null) {
      if (typeof e.attrs.xmlns === 'string') return e.attrs.xmlns;
      if (e === this.stack[0]) return PIE_ROOTS[0];
    }
    return undefined;
  }

  private text(text: string): void {
    const top = this.stack[this.stack.length - 1];
    if (top) top.t(text);
  }

  private close(): void {
    if (this.depth >= 3) {
      const el = this.stack.pop();
      if (this.depth === 3 && el) {
        el.parent = null;
        this.done.push({ host: this.host!, user: el });
      }
      if (this.userBytes > this.limits.maxUserBytes) this.fail(`a <user/> larger than ${this.limits.maxUserBytes} bytes`);
    }
    this.depth--;
  }
}
