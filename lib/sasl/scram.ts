// SCRAM-SHA-1/-256/-512 and their -PLUS variants: RFC 5802 (SCRAM), RFC 7677 (SHA-256),
// RFC 5929 and RFC 9266 (channel bindings), XEP-0440 (binding type negotiation).
import { randomToken } from '../util/random-pool.js';
import { constantTimeEqual, digest, hashLength, hmac, xor } from '../accounts/scram-keys.js';
import type { ScramCredential, ScramHash } from '../accounts/types.js';
import { authzidAllowed, decodeBase64Strict, decodeUtf8Strict, prepareUsername } from './common.js';
import {
  failure,
  type ChannelBindingType,
  type SaslContext,
  type SaslExchange,
  type SaslMechanism,
  type SaslStep,
} from './mechanism.js';

export interface ScramOptions {
  /** The server's part of the nonce; 24 random bytes in base64 unless replaced (tests). */
  nonce?: () => string;
}

const CHANNEL_BINDING_TYPES: readonly string[] = ['tls-exporter', 'tls-server-end-point', 'tls-unique'];
// RFC 5802 §7: printable = %x21-2B / %x2D-7E (no comma).
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/;
// gs2-header = gs2-cbind-flag "," [ authzid ] ","
const GS2_HEADER = /^(n|y|p=([A-Za-z0-9.-]+)),(?:a=([^,]+))?,/;
// attr-val = ALPHA "=" value
const ATTR_VAL = /^[A-Za-z]=/;

function defaultNonce(): string {
  return randomToken(24, 'base64');
}

/** RFC 5802 §5.1 saslname: "=2C" is ",", "=3D" is "="; any other "=" is an error. */
function unescapeSaslname(value: string): string | undefined {
  if (value.length === 0) return undefined;
  let bad = false;
  const out = value.replace(/=(2C|3D|.{0,2})/g, (_m, code: string) => {
    if (code === '2C') return ',';
    if (code === '3D') return '=';
    bad = true;
    return '';
  });
  return bad ? undefined : out;
}

/** Whether the stream advertises any -PLUS mechanism (so a `y` flag means a stripped offer). */
function plusOffered(ctx: SaslContext): boolean {
  if (ctx.offered !== undefined) return ctx.offered.some((n) => n.endsWith('-PLUS'));
  return (ctx.tls?.bindings().length ?? 0) > 0;
}

/**
 * XEP-0474 §4.1 (SASL SCRAM Downgrade Protection): the hash of what the stream advertised, the
 * mechanisms sorted and joined by %x1E, then (when XEP-0440 channel bindings were advertised,
 * which Parley does whenever a -PLUS mechanism is offered) %x1F and the binding types likewise;
 * sent as the `h` attribute of server-first-message, so the client proof signs it. Only when the
 * negotiator told us what it offered.
 */
export function downgradeProtectionHash(ctx: SaslContext, hash: ScramHash): string | undefined {
  if (ctx.offered === undefined) return undefined;
  const plus = ctx.offered.some((n) => n.endsWith('-PLUS'));
  const bindings = plus ? (ctx.tls?.bindings() ?? []) : [];
  // Every stream of a listener offers the same few lists: the hash of each is kept.
  const key = `${hash}\x1d${ctx.offered.join('\x1e')}\x1d${bindings.join('\x1e')}`;
  const known = ssdpHashes.get(key);
  if (known !== undefined) return known;
  const octet = (a: string, b: string) => (Buffer.compare(Buffer.from(a), Buffer.from(b)));
  let s = [...ctx.offered].sort(octet).join('\x1e');
  if (bindings.length) s += '\x1f' + [...bindings].sort(octet).join('\x1e');
  const value = digest(hash, Buffer.from(s, 'utf8')).toString('base64');
  if (ssdpHashes.size >= SSDP_HASHES) ssdpHashes.delete(ssdpHashes.keys().next().value!);
  ssdpHashes.set(key, value);
  return value;
}

/** The downgrade-protection hashes computed so far, by hash and offer; a handful in practice. */
const ssdpHashes = new Map<string, string>();
const SSDP_HASHES = 256;

interface AfterFirst {
  gs2Header: Buffer;
  cbData: Buffer;
  clientNonce: string;
  nonce: string;
  clientFirstBare: string;
  serverFirst: string;
  user: string | undefined;
  credential: ScramCredential;
  real: boolean;
}

class ScramExchange implements SaslExchange {
  private state: 'first' | 'final' | 'done' = 'first';
  private first: AfterFirst | undefined;

  constructor(
    private readonly hash: ScramHash,
    private readonly plus: boolean,
    private readonly ctx: SaslContext,
    private readonly nonce: () => string,
  ) {}

  async start(initial: Buffer | undefined): Promise<SaslStep> {
    // RFC 4422 §5: without an initial response, an empty challenge asks for it.
    if (initial === undefined) return { kind: 'challenge', data: Buffer.alloc(0) };
    return this.step(initial);
  }

  async step(response: Buffer): Promise<SaslStep> {
    const state = this.state;
    this.state = 'done';
    if (state === 'first') return this.clientFirst(response);
    if (state === 'final') return this.clientFinal(response);
    return failure('malformed-request', 'the exchange is over');
  }

  private async clientFirst(data: Buffer): Promise<SaslStep> {
    const msg = decodeUtf8Strict(data);
    if (msg === undefined) return failure('malformed-request', 'not UTF-8');
    const gs2 = GS2_HEADER.exec(msg);
    if (gs2 === null) return failure('malformed-request', 'bad GS2 header');
    const [header, flag, cbType, rawAuthzid] = gs2 as unknown as [string, string, string | undefined, string | undefined];

    // Channel binding flag (RFC 5802 §6).
    let cbData: Buffer = Buffer.alloc(0);
    if (this.plus) {
      if (cbType === undefined) return failure('malformed-request', 'a -PLUS mechanism requires channel binding');
      if (!CHANNEL_BINDING_TYPES.includes(cbType) || this.ctx.tls === undefined) {
        return failure('not-authorized', 'unsupported channel binding type');
      }
      const type = cbType as ChannelBindingType;
      const data = this.ctx.tls.bindings().includes(type) ? this.ctx.tls.bindingData(type) : undefined;
      if (data === undefined) return failure('not-authorized', 'unsupported channel binding type');
      cbData = data;
    } else if (flag !== 'n') {
      if (cbType !== undefined) return failure('malformed-request', 'channel binding requires a -PLUS mechanism');
      // `y`: the client supports binding but believes we do not. If we do offer -PLUS, the
      // offer was stripped on the way: a downgrade attack.
      if (plusOffered(this.ctx)) return failure('not-authorized', 'channel binding downgrade');
    }

    // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
    const bare = msg.slice(header.length);
    if (bare.startsWith('m=')) return failure('malformed-request', 'mandatory extensions are not supported');
    const attrs = bare.split(',');
    if (attrs.length < 2 || !attrs[0]!.startsWith('n=') || !attrs[1]!.startsWith('r=')) {
      return failure('malformed-request', 'expected n= and r=');
    }
    if (!attrs.slice(2).every((a) => ATTR_VAL.test(a))) return failure('malformed-request', 'bad extension');
    const rawUser = unescapeSaslname(attrs[0]!.slice(2));
    if (rawUser === undefined) return failure('malformed-request', 'bad username encoding');
    const clientNonce = attrs[1]!.slice(2);
    if (!PRINTABLE.test(clientNonce)) return failure('malformed-request', 'bad nonce');

    const user = prepareUsername(rawUser);
    if (rawAuthzid !== undefined) {
      const authzid = unescapeSaslname(rawAuthzid);
      if (authzid === undefined) return failure('malformed-request', 'bad authzid encoding');
      if (!authzidAllowed(authzid, user, this.ctx.host)) return failure('invalid-authzid');
    }

    // Unknown users get a fake credential, so everything until the proof looks the same.
    const { credential, real } = await this.ctx.credentials.scram(this.ctx.host, user ?? rawUser, this.hash);
    const nonce = clientNonce + this.nonce();
    const ssdp = downgradeProtectionHash(this.ctx, this.hash);
    const serverFirst = `r=${nonce},s=${credential.salt.toString('base64')},i=${credential.iterations}${ssdp === undefined ? '' : `,h=${ssdp}`}`;
    this.first = {
      gs2Header: Buffer.from(header, 'utf8'),
      cbData,
      clientNonce,
      nonce,
      clientFirstBare: bare,
      serverFirst,
      user,
      credential,
      real,
    };
    this.state = 'final';
    return { kind: 'challenge', data: Buffer.from(serverFirst, 'utf8') };
  }

  private async clientFinal(data: Buffer): Promise<SaslStep> {
    const first = this.first!;
    const msg = decodeUtf8Strict(data);
    if (msg === undefined) return failure('malformed-request', 'not UTF-8');
    // client-final-message = channel-binding "," nonce ["," extensions] "," proof
    const attrs = msg.split(',');
    if (attrs.length < 3 || !attrs[0]!.startsWith('c=') || !attrs[1]!.startsWith('r=') || !attrs.at(-1)!.startsWith('p=')) {
      return failure('malformed-request', 'expected c=, r= and p=');
    }
    if (!attrs.slice(2, -1).every((a) => ATTR_VAL.test(a))) return failure('malformed-request', 'bad extension');

    // RFC 5802 §5.1: c= is the base64 of the GS2 header and, for -PLUS, the binding data.
    const cb = decodeBase64Strict(attrs[0]!.slice(2));
    if (cb === undefined || !constantTimeEqual(cb, Buffer.concat([first.gs2Header, first.cbData]))) {
      return failure('not-authorized', 'channel binding mismatch');
    }
    const nonce = attrs[1]!.slice(2);
    if (!nonce.startsWith(first.clientNonce) || nonce !== first.nonce) return failure('not-authorized', 'nonce mismatch');
    const proof = decodeBase64Strict(attrs.at(-1)!.slice(2));
    if (proof === undefined || proof.length !== hashLength(this.hash)) return failure('malformed-request', 'bad proof');

    const withoutProof = msg.slice(0, msg.lastIndexOf(','));
    const authMessage = `${first.clientFirstBare},${first.serverFirst},${withoutProof}`;
    const { storedKey, serverKey } = first.credential;
    // RFC 5802 §3: ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) = StoredKey?
    const clientKey = xor(proof, hmac(this.hash, storedKey, authMessage));
    const matches = constantTimeEqual(digest(this.hash, clientKey), storedKey);
    if (!matches || !first.real || first.user === undefined) return failure('not-authorized');
    const serverSignature = hmac(this.hash, serverKey, authMessage);
    return { kind: 'success', data: Buffer.from(`v=${serverSignature.toString('base64')}`, 'utf8'), user: first.user };
  }
}

/** A SCRAM mechanism for one hash, with channel binding (-PLUS) or without. */
export function scramMechanism(hash: ScramHash, plus: boolean, options: ScramOptions = {}): SaslMechanism {
  const name = `SCRAM-${hash}${plus ? '-PLUS' : ''}`;
  const nonce = options.nonce ?? defaultNonce;
  return {
    name,
    available(ctx) {
      return !plus || (ctx.tls !== undefined && ctx.tls.bindings().length > 0);
    },
    create(ctx) {
      return new ScramExchange(hash, plus, ctx, nonce);
    },
  };
}
