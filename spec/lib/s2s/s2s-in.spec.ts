// The inbound s2s stream machine, driven through a fake transport: what it offers, what it
// refuses with which stream error, and how dialback and SASL EXTERNAL verify domains.
import { expect } from 'chai';
import type { Element } from '../../../lib/xml/element.js';
import { StreamParser } from '../../../lib/xml/stream-parser.js';
import { DEFAULT_LIMITS } from '../../../lib/xml/limits.js';
import { silentLogger } from '../../../lib/log.js';
import type { S2sConfig } from '../../../lib/config/schema.js';
import type { Router } from '../../../lib/routing/router.js';
import { StanzaError } from '../../../lib/stanza/error.js';
import { NS } from '../../../lib/stanza/ns.js';
import { xmlStreamFraming } from '../../../lib/stream/xml-framing.js';
import type { PeerCertificate, S2sTlsContexts } from '../../../lib/s2s/certificates.js';
import { DialbackKeys } from '../../../lib/s2s/dialback-key.js';
import { S2sInStream } from '../../../lib/s2s/s2s-in.js';
import type { DialbackVerdict, S2sEnv, S2sStreamTransport, VerifyRequest } from '../../../lib/s2s/types.js';

class FakeTransport implements S2sStreamTransport {
  remoteAddress = '192.0.2.7';
  secure: boolean;
  tlsSocket = undefined;
  bufferedBytes = 0;
  canStartTls: boolean;
  ended = false;
  paused = false;
  /** Domains the peer's certificate is valid for. */
  readonly validFor = new Set<string>();
  private out = '';
  private feed: ((chunk: Buffer) => void) | undefined;
  private readonly closeListeners: Array<() => void> = [];

  constructor(opts: { secure: boolean }) {
    this.secure = opts.secure;
    this.canStartTls = !opts.secure;
  }

  write(data: string): void { this.out += data; }
  pause(): void { this.paused = true; }
  resume(): void { this.paused = false; }
  end(): void { this.ended = true; }
  destroy(): void { this.ended = true; for (const l of this.closeListeners) l(); }
  async startTls(): Promise<void> {
    this.secure = true;
    this.canStartTls = false;
  }
  onData(l: (chunk: Buffer) => void): void { this.feed = l; }
  onClose(l: () => void): void { this.closeListeners.push(l); }
  peerCertificate(domain: string): PeerCertificate {
    return this.validFor.has(domain) ? { valid: true } : { valid: false, reason: 'self-signed' };
  }

  send(text: string): void { this.feed!(Buffer.from(text)); }

  /** Everything written so far, parsed: stream headers and top-level elements, per stream. */
  parsed(): { headers: Array<Record<string, string>>; elements: Element[]; closed: boolean } {
    const headers: Array<Record<string, string>> = [];
    const elements: Element[] = [];
    let closed = false;
    // Each header starts a new document (after STARTTLS and SASL).
    for (const doc of this.out.split(/(?=<\?xml)/)) {
      if (doc === '') continue;
      const p = new StreamParser(
        {
          onStreamOpen: (attrs) => headers.push(attrs),
          onElement: (el) => elements.push(el),
          onStreamClose: () => (closed = true),
          onError: (err) => { throw err; },
        },
        DEFAULT_LIMITS,
      );
      p.write(Buffer.from(doc));
    }
    return { headers, elements, closed };
  }

  last(): Element | undefined {
    const { elements } = this.parsed();
    return elements[elements.length - 1];
  }

  streamErrorCondition(): string | undefined {
    const err = this.parsed().elements.find((e) => e.name === 'error' && e.attrs.xmlns === NS.stream);
    return err?.getChildElements().find((c) => c.name !== 'text')?.name;
  }
}

const HEADER = (from = 'remote.test', to = 'local.test', extra = '') =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' xmlns:stream='http://etherx.jabber.org/streams' from='${from}' to='${to}' version='1.0'${extra}>`;

const CONFIG: S2sConfig = {
  blockedDomains: [],
  requireEncryption: true,
  requireValidCertificates: false,
  dialback: true,
  idleTimeout: 600_000,
  connectTimeout: 10_000,
  queueLimit: 100,
  trustedCAs: [],
  resolver: { hosts: {} },
};

interface Rig {
  t: FakeTransport;
  stream: S2sInStream;
  routed: Element[];
  asked: VerifyRequest[];
  keys: DialbackKeys;
  /** Pairs attached as reverse routes (XEP-0288), as "local remote". */
  reverse: string[];
  setVerdict(v: DialbackVerdict): void;
}

function rig(opts: { secure?: boolean; config?: Partial<S2sConfig> } = {}): Rig {
  const t = new FakeTransport({ secure: opts.secure ?? true });
  const routed: Element[] = [];
  const asked: VerifyRequest[] = [];
  const reverse: string[] = [];
  let verdict: DialbackVerdict = 'valid';
  const isLocal = (d: string) => d === 'local.test' || d === 'chat.local.test';
  const router = { isLocal, route: async (el: Element) => void routed.push(el), bounce: () => undefined } as unknown as Router;
  const keys = new DialbackKeys('test secret');
  const env: S2sEnv = {
    router,
    isLocal,
    keys,
    tls: {} as S2sTlsContexts,
    config: { ...CONFIG, ...opts.config },
    limits: {
      stanzaBytes: 65_536,
      preAuthStanzaBytes: 16_384,
      depth: 32,
      attributes: 32,
      unauthenticatedTimeoutMs: 60_000,
      inboundQueue: 16,
      outboundBufferBytes: 1 << 20,
    },
    log: silentLogger(),
    verifyKey: async (req) => {
      asked.push(req);
      return verdict;
    },
    attachReverse: (local, remote) => void reverse.push(`${local} ${remote}`),
    detachReverse: () => void reverse.splice(0),
  };
  const stream = new S2sInStream(t, xmlStreamFraming(NS.server), env, () => undefined);
  return { t, stream, routed, asked, keys, reverse, setVerdict: (v) => (verdict = v) };
}

const tick = () => new Promise((r) => setImmediate(r));

/** Opens the stream and has remote.test → local.test verified by dialback. */
async function verified(): Promise<Rig> {
  const r = rig();
  r.t.send(HEADER());
  r.t.send(`<db:result from='remote.test' to='local.test'>abc123</db:result>`);
  await tick();
  return r;
}

describe('s2s-in stream', () => {
  it('answers the header with from, to, an id, version 1.0 and the dialback namespace', () => {
    const { t } = rig();
    t.send(HEADER());
    const { headers } = t.parsed();
    expect(headers[0]).to.include({ from: 'local.test', to: 'remote.test', version: '1.0', xmlns: NS.server });
    expect(headers[0]!.id).to.match(/^[\w-]{8,}$/);
    // The parser leaves prefix declarations out of attrs; check the raw header instead.
    expect((t as unknown as { out: string }).out).to.contain(`xmlns:db='${NS.dialback}'`);
  });

  it('offers only STARTTLS, required, before TLS', () => {
    const { t } = rig({ secure: false });
    t.send(HEADER());
    const features = t.last()!;
    expect(features.name).to.equal('features');
    expect(features.getChildElements().map((c) => c.name)).to.deep.equal(['starttls']);
    expect(features.getChild('starttls', NS.tls)?.getChild('required')).to.not.equal(undefined);
  });

  it('offers dialback after TLS, and SASL EXTERNAL only for a certificate valid for the from domain', () => {
    const plain = rig();
    plain.t.send(HEADER());
    expect(plain.t.last()!.getChild('mechanisms', NS.sasl)).to.equal(undefined);
    expect(plain.t.last()!.getChild('dialback', NS.dialbackFeature)?.getChild('errors')).to.not.equal(undefined);

    const certified = rig();
    certified.t.validFor.add('remote.test');
    certified.t.send(HEADER());
    const mechs = certified.t.last()!.getChild('mechanisms', NS.sasl)?.getChildren('mechanism').map((m) => m.getText());
    expect(mechs).to.deep.equal(['EXTERNAL']);
  });

  it('refuses the wrong content namespace with invalid-namespace', () => {
    const { t } = rig();
    t.send(HEADER().replace("xmlns='jabber:server'", "xmlns='jabber:client'"));
    expect(t.streamErrorCondition()).to.equal('invalid-namespace');
    expect(t.ended).to.equal(true);
  });

  it('refuses a stream to a domain not served here with host-unknown', () => {
    const { t } = rig();
    t.send(HEADER('remote.test', 'elsewhere.test'));
    expect(t.streamErrorCondition()).to.equal('host-unknown');
  });

  it('refuses a stanza before any domain is verified with not-authorized', () => {
    const { t, routed } = rig();
    t.send(HEADER());
    t.send(`<message from='juliet@remote.test' to='romeo@local.test'><body>hi</body></message>`);
    expect(t.streamErrorCondition()).to.equal('not-authorized');
    expect(routed).to.have.length(0);
  });

  it('verifies a dialback key with the Authoritative Server, bound to this stream id (XEP-0220)', async () => {
    const { t, asked } = await verified();
    const id = t.parsed().headers[0]!.id;
    expect(asked).to.deep.equal([{ receiving: 'local.test', originating: 'remote.test', streamId: id, key: 'abc123' }]);
    const result = t.last()!;
    expect(result.name).to.equal('result');
    expect(result.attrs).to.include({ xmlns: NS.dialback, from: 'local.test', to: 'remote.test', type: 'valid' });
  });

  it('routes stanzas from a verified domain', async () => {
    const { t, routed } = await verified();
    t.send(`<message from='juliet@remote.test/balcony' to='romeo@local.test' id='m1'><body>hi</body></message>`);
    await tick();
    expect(routed.map((e) => e.attrs.id)).to.deep.equal(['m1']);
    expect(t.streamErrorCondition()).to.equal(undefined);
  });

  it('closes with invalid-from for a stanza from a domain not verified on this stream', async () => {
    const { t, routed } = await verified();
    t.send(`<message from='mallory@other.test' to='romeo@local.test'><body>spoof</body></message>`);
    await tick();
    expect(t.streamErrorCondition()).to.equal('invalid-from');
    expect(routed).to.have.length(0);
  });

  it('closes with host-unknown for a stanza to a domain not served here', async () => {
    const { t } = await verified();
    t.send(`<message from='juliet@remote.test' to='someone@third.test'/>`);
    expect(t.streamErrorCondition()).to.equal('host-unknown');
  });

  it('closes with improper-addressing for a stanza without from or to', async () => {
    const { t } = await verified();
    t.send(`<message to='romeo@local.test'/>`);
    expect(t.streamErrorCondition()).to.equal('improper-addressing');
  });

  it('sends type invalid and closes with not-authorized when the key is not the sender\'s', async () => {
    const r = rig();
    r.setVerdict('invalid');
    r.t.send(HEADER());
    r.t.send(`<db:result from='remote.test' to='local.test'>forged</db:result>`);
    await tick();
    const result = r.t.parsed().elements.find((e) => e.name === 'result');
    expect(result?.attrs.type).to.equal('invalid');
    expect(r.t.streamErrorCondition()).to.equal('not-authorized');
  });

  it('reports a failed verification as a dialback error, keeping the stream (XEP-0220 §2.4)', async () => {
    const r = rig();
    r.setVerdict(StanzaError.remoteServerNotFound());
    r.t.send(HEADER());
    r.t.send(`<db:result from='remote.test' to='local.test'>k</db:result>`);
    await tick();
    const result = r.t.last()!;
    expect(result.attrs.type).to.equal('error');
    expect(result.getChild('error')?.getChild('remote-server-not-found', NS.stanzaErrors)).to.not.equal(undefined);
    expect(r.t.ended).to.equal(false);
  });

  it('answers a dialback request for a domain not served here with item-not-found', async () => {
    const r = rig();
    r.t.send(HEADER());
    r.t.send(`<db:result from='remote.test' to='nothere.test'>k</db:result>`);
    await tick();
    const result = r.t.last()!;
    expect(result.attrs).to.include({ type: 'error', from: 'nothere.test', to: 'remote.test' });
    expect(result.getChild('error')?.getChild('item-not-found', NS.stanzaErrors)).to.not.equal(undefined);
    expect(r.asked).to.have.length(0);
  });

  it('refuses dialback before TLS with policy-violation when encryption is required', async () => {
    const r = rig({ secure: false });
    r.t.send(HEADER());
    r.t.send(`<db:result from='remote.test' to='local.test'>k</db:result>`);
    await tick();
    expect(r.t.last()!.getChild('error')?.getChild('policy-violation', NS.stanzaErrors)).to.not.equal(undefined);
    expect(r.asked).to.have.length(0);
  });

  it('accepts a certificate valid for the sender domain without calling back (XEP-0344 §2.4)', async () => {
    const r = rig();
    r.t.validFor.add('remote.test');
    r.t.send(HEADER());
    r.t.send(`<db:result from='remote.test' to='local.test'>k</db:result>`);
    await tick();
    expect(r.asked).to.have.length(0);
    expect(r.t.last()!.attrs.type).to.equal('valid');
  });

  it('refuses dialback with not-authorized when valid certificates are required', async () => {
    const r = rig({ config: { requireValidCertificates: true } });
    r.t.send(HEADER());
    r.t.send(`<db:result from='remote.test' to='local.test'>k</db:result>`);
    await tick();
    expect(r.asked).to.have.length(0);
    expect(r.t.last()!.getChild('error')?.getChild('not-authorized', NS.stanzaErrors)).to.not.equal(undefined);
  });

  it('ignores an unsolicited typed <db:result/> (XEP-0220 §4.1)', async () => {
    const r = rig();
    r.t.send(HEADER());
    const before = r.t.parsed().elements.length;
    r.t.send(`<db:result from='remote.test' to='local.test' type='valid'/>`);
    r.t.send(`<message from='juliet@remote.test' to='romeo@local.test'/>`);
    await tick();
    expect(r.t.parsed().elements.length).to.equal(before + 1);
    expect(r.t.streamErrorCondition()).to.equal('not-authorized');
  });

  it('answers <db:verify/> for its own keys: valid, invalid, and item-not-found for other domains', () => {
    const r = rig();
    r.t.send(HEADER());
    const good = r.keys.generate('remote.test', 'local.test', 'S1');
    r.t.send(`<db:verify from='remote.test' to='local.test' id='S1'>${good}</db:verify>`);
    expect(r.t.last()!.attrs).to.include({ from: 'local.test', to: 'remote.test', id: 'S1', type: 'valid' });
    r.t.send(`<db:verify from='remote.test' to='local.test' id='S2'>${good}</db:verify>`);
    expect(r.t.last()!.attrs).to.include({ id: 'S2', type: 'invalid' });
    r.t.send(`<db:verify from='remote.test' to='nothere.test' id='S3'>${good}</db:verify>`);
    expect(r.t.last()!.attrs).to.include({ id: 'S3', type: 'error' });
  });

  it('authenticates with SASL EXTERNAL, restarts, and then routes stanzas (XEP-0178)', async () => {
    const r = rig();
    r.t.validFor.add('remote.test');
    r.t.send(HEADER());
    r.t.send(`<auth xmlns='${NS.sasl}' mechanism='EXTERNAL'>${Buffer.from('remote.test').toString('base64')}</auth>`);
    expect(r.t.last()!.name).to.equal('success');
    r.t.send(HEADER());
    const { headers } = r.t.parsed();
    expect(headers).to.have.length(2);
    expect(r.t.last()!.name).to.equal('features');
    expect(r.t.last()!.getChildElements()).to.have.length(0);
    r.t.send(`<iq from='juliet@remote.test/x' to='local.test' type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await tick();
    expect(r.routed.map((e) => e.attrs.id)).to.deep.equal(['p']);
  });

  it('fails SASL EXTERNAL for a certificate not valid for the domain, or a foreign authzid', () => {
    const r = rig();
    r.t.send(HEADER());
    r.t.send(`<auth xmlns='${NS.sasl}' mechanism='EXTERNAL'>=</auth>`);
    expect(r.t.last()!.name).to.equal('failure');
    expect(r.t.last()!.getChild('not-authorized')).to.not.equal(undefined);

    const s = rig();
    s.t.validFor.add('remote.test');
    s.t.send(HEADER());
    s.t.send(`<auth xmlns='${NS.sasl}' mechanism='EXTERNAL'>${Buffer.from('other.test').toString('base64')}</auth>`);
    expect(s.t.last()!.getChild('invalid-authzid')).to.not.equal(undefined);
  });

  it('offers bidi before authentication and, once asked, carries stanzas back for verified pairs (XEP-0288)', async () => {
    const r = rig();
    r.t.send(HEADER());
    expect(r.t.last()!.getChild('bidi', NS.bidiFeature)).to.not.equal(undefined);
    r.t.send(`<bidi xmlns='${NS.bidi}'/>`);
    r.t.send(`<db:result from='remote.test' to='local.test'>k</db:result>`);
    await tick();
    expect(r.reverse).to.deep.equal(['local.test remote.test']);
    expect(r.stream.bidirectional).to.equal(true);
    r.stream.sendReverse(`<message from='romeo@local.test' to='juliet@remote.test'/>`, 'message');
    expect(r.t.last()!.attrs).to.include({ from: 'romeo@local.test', to: 'juliet@remote.test' });
    r.t.send('</stream:stream>');
    expect(r.reverse).to.deep.equal([]);
  });

  it('refuses bidi after authentication with policy-violation', async () => {
    const { t } = await verified();
    t.send(`<bidi xmlns='${NS.bidi}'/>`);
    expect(t.streamErrorCondition()).to.equal('policy-violation');
  });

  it('does not make a stream bidirectional unless asked', async () => {
    const r = await verified();
    expect(r.reverse).to.deep.equal([]);
  });
});
