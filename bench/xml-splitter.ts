// Splits an XMPP stream into its top-level elements, as strings, without building a tree: the
// load generator only needs to recognise a handful of elements and read a body, and a real
// parser on the client side would make the client, not the server, the bottleneck.
//
// Input is decoded as latin1, which keeps one char per byte: the markup characters it looks for
// are ASCII and never occur inside a UTF-8 multi-byte sequence, so boundaries stay exact.

export interface SplitterEvents {
  /** The server's <stream:stream ...> header. */
  onOpen(header: string): void;
  /** One complete top-level element (a stanza, stream features, SASL or TLS nonza). */
  onElement(xml: string): void;
  /** </stream:stream>. */
  onClose(): void;
}

export class XmlSplitter {
  private buf = '';
  private pos = 0;
  private depth = 0;
  private elementStart = -1;
  /** Bumped by reset(), so a scan interrupted by a reset from a callback stops. */
  private generation = 0;

  constructor(private readonly events: SplitterEvents) {}

  /** Forgets everything: after STARTTLS and SASL success the server starts a new stream. */
  reset(): void {
    this.buf = '';
    this.pos = 0;
    this.depth = 0;
    this.elementStart = -1;
    this.generation++;
  }

  write(chunk: Buffer): void {
    this.buf += chunk.toString('latin1');
    this.scan();
  }

  private scan(): void {
    const buf = this.buf;
    const generation = this.generation;
    let pos = this.pos;
    for (;;) {
      const lt = buf.indexOf('<', pos);
      if (lt < 0) {
        pos = buf.length;
        break;
      }
      const gt = tagEnd(buf, lt);
      if (gt < 0) {
        pos = lt; // an incomplete tag: wait for more bytes
        break;
      }
      pos = gt + 1;
      const kind = buf.charCodeAt(lt + 1);
      if (kind === 0x3f /* ? */ || kind === 0x21 /* ! */) continue; // XML declaration, comment
      if (kind === 0x2f /* / */) {
        this.depth--;
        if (this.depth === 1 && this.elementStart >= 0) {
          const el = buf.slice(this.elementStart, pos);
          this.elementStart = -1;
          this.events.onElement(el);
          if (this.generation !== generation) return; // reset() from inside the callback
        } else if (this.depth === 0) {
          this.events.onClose();
          if (this.generation !== generation) return;
        }
        continue;
      }
      const selfClosing = buf.charCodeAt(gt - 1) === 0x2f;
      if (this.depth === 0) {
        // The stream header opens and never closes within the element.
        this.depth = 1;
        this.events.onOpen(buf.slice(lt, pos));
        if (this.generation !== generation) return;
        continue;
      }
      if (this.depth === 1) {
        if (selfClosing) {
          this.events.onElement(buf.slice(lt, pos));
          if (this.generation !== generation) return;
          continue;
        }
        this.elementStart = lt;
      }
      if (!selfClosing) this.depth++;
    }
    // Keep only what is still needed: the element being read, or the incomplete tag.
    const keep = this.elementStart >= 0 ? this.elementStart : pos;
    if (keep > 0) {
      this.buf = buf.slice(keep);
      pos -= keep;
      if (this.elementStart >= 0) this.elementStart = 0;
    }
    this.pos = pos;
  }
}

/** The index of the '>' closing the tag that starts at `lt`, skipping quoted values; -1 if incomplete. */
function tagEnd(buf: string, lt: number): number {
  // Comments may contain quotes and '>': find their own terminator.
  if (buf.startsWith('<!--', lt)) {
    const end = buf.indexOf('-->', lt + 4);
    return end < 0 ? -1 : end + 2;
  }
  let i = lt + 1;
  const n = buf.length;
  while (i < n) {
    const c = buf.charCodeAt(i);
    if (c === 0x3e /* > */) return i;
    if (c === 0x22 /* " */ || c === 0x27 /* ' */) {
      const close = buf.indexOf(c === 0x22 ? '"' : "'", i + 1);
      if (close < 0) return -1;
      i = close + 1;
      continue;
    }
    i++;
  }
  return -1;
}
