// PLAIN (RFC 4616): the password in the clear, so only inside TLS (RFC 6120 §6.4.1 and
// §13.8). Verified against the stored SCRAM keys or an imported bcrypt hash.
import { authzidAllowed, decodeUtf8Strict, prepareUsername } from './common.js';
import { failure, type SaslContext, type SaslExchange, type SaslMechanism, type SaslStep } from './mechanism.js';

class PlainExchange implements SaslExchange {
  private done = false;
  private waiting = false;

  constructor(private readonly ctx: SaslContext) {}

  async start(initial: Buffer | undefined): Promise<SaslStep> {
    if (initial === undefined) {
      // RFC 4422 §5: no initial response; an empty challenge asks for the message.
      this.waiting = true;
      return { kind: 'challenge', data: Buffer.alloc(0) };
    }
    return this.verify(initial);
  }

  async step(response: Buffer): Promise<SaslStep> {
    if (!this.waiting) return failure('malformed-request', 'the exchange is over');
    this.waiting = false;
    return this.verify(response);
  }

  private async verify(data: Buffer): Promise<SaslStep> {
    if (this.done) return failure('malformed-request', 'the exchange is over');
    this.done = true;
    // message = [authzid] UTF8NUL authcid UTF8NUL passwd
    const msg = decodeUtf8Strict(data);
    if (msg === undefined) return failure('malformed-request', 'not UTF-8');
    const parts = msg.split('\u0000');
    if (parts.length !== 3) return failure('malformed-request', 'expected authzid NUL authcid NUL password');
    const [authzid, authcid, password] = parts as [string, string, string];
    if (authcid.length === 0 || password.length === 0) return failure('malformed-request', 'empty authcid or password');

    const user = prepareUsername(authcid);
    if (authzid.length > 0 && !authzidAllowed(authzid, user, this.ctx.host)) return failure('invalid-authzid');
    // Invalid names go through the same lookup as unknown ones: the same time, the same answer.
    const ok = await this.ctx.credentials.verifyPassword(this.ctx.host, user ?? authcid, password);
    if (!ok || user === undefined) return failure('not-authorized');
    return { kind: 'success', user };
  }
}

export const plainMechanism: SaslMechanism = {
  name: 'PLAIN',
  available(ctx) {
    return ctx.tls !== undefined;
  },
  create(ctx) {
    return new PlainExchange(ctx);
  },
};
