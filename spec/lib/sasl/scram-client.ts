// Test-only SCRAM client (RFC 5802 §3, §5, §7), written independently of lib/ so the server is
// checked against a second implementation rather than against itself.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import saslprep from '@mongodb-js/saslprep';

export type ClientHash = 'SHA-1' | 'SHA-256' | 'SHA-512';

const ALG: Record<ClientHash, 'sha1' | 'sha256' | 'sha512'> = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-512': 'sha512' };
const LEN: Record<ClientHash, number> = { 'SHA-1': 20, 'SHA-256': 32, 'SHA-512': 64 };

export interface ScramClientOptions {
  hash: ClientHash;
  username: string;
  password: string;
  /** Client nonce; random when absent. */
  nonce?: string;
  /** Unescaped authzid. */
  authzid?: string;
  /** 'n' (default), 'y', or 'p=<type>'. */
  flag?: string;
  /** Channel binding data for 'p='. */
  cbData?: Buffer;
}

export interface FinalOverrides {
  /** Replace the r= value. */
  nonce?: string;
  /** Replace the c= value (already base64). */
  channelBinding?: string;
  /** Use this password for the proof instead of the real one. */
  password?: string;
}

function escapeSaslname(s: string): string {
  return s.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

export class ScramClient {
  readonly clientNonce: string;
  private readonly gs2Header: string;
  private readonly clientFirstBare: string;
  private authMessage: string | undefined;
  private saltedPassword: Buffer | undefined;
  /** Parsed from the server-first-message. */
  serverFirst: { nonce: string; salt: Buffer; iterations: number } | undefined;

  constructor(private readonly opts: ScramClientOptions) {
    this.clientNonce = opts.nonce ?? randomBytes(18).toString('base64');
    const authzid = opts.authzid === undefined ? '' : `a=${escapeSaslname(opts.authzid)}`;
    this.gs2Header = `${opts.flag ?? 'n'},${authzid},`;
    this.clientFirstBare = `n=${escapeSaslname(saslprep(opts.username, { allowUnassigned: true }))},r=${this.clientNonce}`;
  }

  first(): Buffer {
    return Buffer.from(this.gs2Header + this.clientFirstBare, 'utf8');
  }

  final(serverFirstMessage: Buffer, overrides: FinalOverrides = {}): Buffer {
    const text = serverFirstMessage.toString('utf8');
    const m = /^r=([^,]+),s=([^,]+),i=(\d+)/.exec(text);
    if (m === null) throw new Error(`bad server-first-message: ${text}`);
    this.serverFirst = { nonce: m[1]!, salt: Buffer.from(m[2]!, 'base64'), iterations: Number(m[3]) };
    const { hash } = this.opts;
    const alg = ALG[hash];
    const cbind = Buffer.concat([Buffer.from(this.gs2Header, 'utf8'), this.opts.cbData ?? Buffer.alloc(0)]).toString('base64');
    const withoutProof = `c=${overrides.channelBinding ?? cbind},r=${overrides.nonce ?? this.serverFirst.nonce}`;
    this.authMessage = `${this.clientFirstBare},${text},${withoutProof}`;
    const password = saslprep(overrides.password ?? this.opts.password);
    this.saltedPassword = pbkdf2Sync(password, this.serverFirst.salt, this.serverFirst.iterations, LEN[hash], alg);
    const clientKey = createHmac(alg, this.saltedPassword).update('Client Key').digest();
    const storedKey = createHash(alg).update(clientKey).digest();
    const signature = createHmac(alg, storedKey).update(this.authMessage).digest();
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ signature[i]!;
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'utf8');
  }

  /** Checks v= in the server-final-message: proof that the server knew our keys. */
  verifyServerFinal(data: Buffer | undefined): boolean {
    if (data === undefined || this.authMessage === undefined || this.saltedPassword === undefined) return false;
    const m = /^v=([A-Za-z0-9+/=]+)$/.exec(data.toString('utf8'));
    if (m === null) return false;
    const alg = ALG[this.opts.hash];
    const serverKey = createHmac(alg, this.saltedPassword).update('Server Key').digest();
    const expected = createHmac(alg, serverKey).update(this.authMessage).digest();
    const got = Buffer.from(m[1]!, 'base64');
    return got.length === expected.length && timingSafeEqual(got, expected);
  }
}
