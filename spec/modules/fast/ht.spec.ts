import { createHmac, randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { htMechanism, htMessage, tokenKey, type TokenVerifier } from '../../../modules/fast/ht.js';
import type { SaslContext, TlsChannel } from '../../../lib/sasl/mechanism.js';

const tls: TlsChannel = {
  version: 'TLSv1.3',
  bindings: () => ['tls-exporter'],
  bindingData: (t) => (t === 'tls-exporter' ? Buffer.alloc(32, 7) : undefined),
};

function ctx(over: Partial<SaslContext> = {}): SaslContext {
  return {
    host: 'localhost',
    tls,
    credentials: { scram: async () => { throw new Error('unused'); }, verifyPassword: async () => false },
    userAgentId: 'ua-1',
    ...over,
  };
}

describe('modules/fast: HT-SHA-256 mechanisms (draft-schmaus-kitten-sasl-ht)', () => {
  const token = randomBytes(72).toString('base64url');
  const verifier: TokenVerifier & { usedWith?: string } = {
    async candidates(_h, user, client, mech) {
      return user === 'alice' && client === 'ua-1' && mech.startsWith('HT-SHA-256') ? [{ key: tokenKey(token) }] : [];
    },
    async used(_h, _u, _c, mech) {
      verifier.usedWith = mech;
    },
  };
  const initial = (cb: Buffer, t = token, user = 'alice') =>
    Buffer.concat([Buffer.from(`${user}\0`), createHmac('sha256', Buffer.from(t)).update(Buffer.concat([Buffer.from('Initiator'), cb])).digest()]);

  it('keys HMAC with the SHA-256 of a long token exactly as with the token (RFC 2104 §2), so tokens can be stored hashed', () => {
    const direct = createHmac('sha256', Buffer.from(token)).update('Initiator').digest();
    expect(htMessage(tokenKey(token), 'Initiator', Buffer.alloc(0)).equals(direct)).to.equal(true);
  });

  it('HT-SHA-256-NONE succeeds in one message and proves the server with the Responder HMAC', async () => {
    const step = await htMechanism('HT-SHA-256-NONE', undefined, verifier).create(ctx()).start(initial(Buffer.alloc(0)));
    expect(step.kind).to.equal('success');
    if (step.kind !== 'success') return;
    expect(step.user).to.equal('alice');
    expect(step.data!.equals(createHmac('sha256', Buffer.from(token)).update('Responder').digest())).to.equal(true);
  });

  it('HT-SHA-256-EXPR binds to tls-exporter: a proof without it fails', async () => {
    const mech = htMechanism('HT-SHA-256-EXPR', 'tls-exporter', verifier);
    expect((await mech.create(ctx()).start(initial(Buffer.alloc(32, 7)))).kind).to.equal('success');
    expect((await mech.create(ctx()).start(initial(Buffer.alloc(0)))).kind).to.equal('failure');
  });

  it('is unavailable without TLS, and the channel-bound variant without its binding', () => {
    expect(htMechanism('HT-SHA-256-NONE', undefined, verifier).available(ctx({ tls: undefined }))).to.equal(false);
    expect(htMechanism('HT-SHA-256-UNIQ', 'tls-unique', verifier).available(ctx())).to.equal(false);
  });

  it('fails a wrong token with credentials-expired, and a missing user agent id', async () => {
    const mech = htMechanism('HT-SHA-256-NONE', undefined, verifier);
    const wrong = await mech.create(ctx()).start(initial(Buffer.alloc(0), 'x'.repeat(80)));
    expect(wrong).to.deep.equal({ kind: 'failure', condition: 'credentials-expired' });
    expect((await mech.create(ctx({ userAgentId: undefined })).start(initial(Buffer.alloc(0)))).kind).to.equal('failure');
    expect((await mech.create(ctx()).start(Buffer.from('no-nul'))).kind).to.equal('failure');
  });
});
