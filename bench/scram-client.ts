// The client side of SASL SCRAM-SHA-1 (RFC 5802) for the load generator, without channel
// binding (gs2 flag "n": the same exchange on every server). The salted password, the PBKDF2
// part, depends only on password, salt and iteration count, so it is computed once per account
// and cached: after the first login of an account, a login costs the client a few HMACs, and
// the figures measure the server, not the load generator's PBKDF2.
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';

export const SCRAM_SHA_1 = 'SCRAM-SHA-1';

interface Keys {
  clientKey: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

/** salt|iterations|password -> keys; a few hundred bytes per account. */
const cache = new Map<string, Promise<Keys>>();

const hmac = (key: Buffer, data: string): Buffer => createHmac('sha1', key).update(data).digest();

function keysFor(password: string, salt: Buffer, iterations: number): Promise<Keys> {
  const id = `${salt.toString('base64')}|${iterations}|${password}`;
  let keys = cache.get(id);
  if (keys === undefined) {
    keys = new Promise<Keys>((resolve, reject) => {
      // The async form runs on libuv's thread pool: the event loop keeps serving other sessions.
      pbkdf2(password, salt, iterations, 20, 'sha1', (err, salted) => {
        if (err) return reject(err);
        const clientKey = hmac(salted, 'Client Key');
        resolve({ clientKey, storedKey: createHash('sha1').update(clientKey).digest(), serverKey: hmac(salted, 'Server Key') });
      });
    });
    keys.catch(() => cache.delete(id));
    cache.set(id, keys);
  }
  return keys;
}

/** Salted passwords cached so far (for the report: how much PBKDF2 the client did). */
export function cachedAccounts(): number {
  return cache.size;
}

/** RFC 5802 §5.1 saslname: ',' and '=' are escaped. */
const saslname = (s: string): string => s.replace(/=/g, '=3D').replace(/,/g, '=2C');

function attributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0]!, part.slice(2));
  }
  return out;
}

/** One SCRAM-SHA-1 exchange: first() for <auth/>, final() for the <response/>, verify() on success. */
export class ScramSha1Client {
  private readonly firstBare: string;
  private serverSignature: Buffer | undefined;

  constructor(
    user: string,
    private readonly password: string,
    /** The client nonce: random unless given (test vectors). */
    private readonly nonce = randomBytes(18).toString('base64'),
  ) {
    this.firstBare = `n=${saslname(user)},r=${this.nonce}`;
  }

  /** The client-first-message, base64, for <auth mechanism='SCRAM-SHA-1'>. */
  first(): string {
    return Buffer.from(`n,,${this.firstBare}`, 'utf8').toString('base64');
  }

  /** The client-final-message (base64) answering the server-first-message (base64). */
  async final(challengeBase64: string): Promise<string> {
    const serverFirst = Buffer.from(challengeBase64, 'base64').toString('utf8');
    const a = attributes(serverFirst);
    const nonce = a.get('r');
    const salt = a.get('s');
    const iterations = Number(a.get('i'));
    if (nonce === undefined || !nonce.startsWith(this.nonce) || salt === undefined || !Number.isInteger(iterations) || iterations < 1) {
      throw new Error(`bad SCRAM server-first-message: ${serverFirst.slice(0, 200)}`);
    }
    const keys = await keysFor(this.password, Buffer.from(salt, 'base64'), iterations);
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.firstBare},${serverFirst},${withoutProof}`;
    const signature = createHmac('sha1', keys.storedKey).update(authMessage).digest();
    const proof = Buffer.alloc(20);
    for (let i = 0; i < 20; i++) proof[i] = keys.clientKey[i]! ^ signature[i]!;
    this.serverSignature = createHmac('sha1', keys.serverKey).update(authMessage).digest();
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'utf8').toString('base64');
  }

  /** Checks the server-final-message (base64): the server proves it knew the keys too. */
  verify(successBase64: string): void {
    const v = attributes(Buffer.from(successBase64, 'base64').toString('utf8')).get('v');
    const expected = this.serverSignature;
    if (v === undefined || expected === undefined) throw new Error('SCRAM success without a server signature');
    const got = Buffer.from(v, 'base64');
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) throw new Error('SCRAM server signature mismatch');
  }
}
