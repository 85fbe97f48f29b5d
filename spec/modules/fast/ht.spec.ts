import { createHmac, randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { HT_BLOCK_BYTES, HT_MECHANISMS, htHashOf, htMechanism, htMessage, tokenKey, type TokenVerifier } from '../../../modules/fast/ht.js';
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

describe('modules/fast: HT-SHA-512 mechanisms', () => {
  // Longer than the SHA-512 block (128 bytes), as the module issues them.
  const token = randomBytes(102).toString('base64url');
  const verifier: TokenVerifier = {
    async candidates(_h, user, client, mech) {
      return user === 'alice' && client === 'ua-1' && mech.startsWith('HT-SHA-512') ? [{ key: tokenKey(token, 'sha512') }] : [];
    },
    async used() {},
  };
  const hmac512 = (label: string, cb: Buffer) => createHmac('sha512', Buffer.from(token)).update(Buffer.concat([Buffer.from(label), cb])).digest();
  const initial = (cb: Buffer, proof = hmac512('Initiator', cb)) => Buffer.concat([Buffer.from('alice\0'), proof]);

  it('lists -NONE, -EXPR, -UNIQ and -ENDP, each with its channel binding and SHA-512', () => {
    const sha512 = HT_MECHANISMS.filter((m) => m.name.startsWith('HT-SHA-512-'));
    expect(sha512.map((m) => [m.name, m.binding, m.hash])).to.deep.equal([
      ['HT-SHA-512-EXPR', 'tls-exporter', 'sha512'],
      ['HT-SHA-512-UNIQ', 'tls-unique', 'sha512'],
      ['HT-SHA-512-ENDP', 'tls-server-end-point', 'sha512'],
      ['HT-SHA-512-NONE', undefined, 'sha512'],
    ]);
    expect(htHashOf('HT-SHA-512-ENDP')).to.equal('sha512');
    expect(htHashOf('HT-SHA-256-ENDP')).to.equal('sha256');
  });

  it('keys HMAC-SHA-512 with the SHA-512 of a token longer than 128 bytes exactly as with the token', () => {
    expect(token.length).to.be.greaterThan(HT_BLOCK_BYTES.sha512);
    expect(htMessage(tokenKey(token, 'sha512'), 'Initiator', Buffer.alloc(0), 'sha512').equals(hmac512('Initiator', Buffer.alloc(0)))).to.equal(true);
  });

  it('HT-SHA-512-NONE succeeds with an HMAC-SHA-512 proof and answers with the SHA-512 Responder HMAC', async () => {
    const step = await htMechanism('HT-SHA-512-NONE', undefined, verifier).create(ctx()).start(initial(Buffer.alloc(0)));
    expect(step.kind).to.equal('success');
    if (step.kind !== 'success') return;
    expect(step.data!.length).to.equal(64);
    expect(step.data!.equals(hmac512('Responder', Buffer.alloc(0)))).to.equal(true);
  });

  it('refuses an HMAC-SHA-256 proof made with the same token', async () => {
    const proof256 = createHmac('sha256', Buffer.from(token)).update('Initiator').digest();
    const step = await htMechanism('HT-SHA-512-NONE', undefined, verifier).create(ctx()).start(initial(Buffer.alloc(0), proof256));
    expect(step).to.deep.equal({ kind: 'failure', condition: 'credentials-expired' });
  });

  it('HT-SHA-512-EXPR binds to tls-exporter; -ENDP and -UNIQ need theirs', async () => {
    const expr = htMechanism('HT-SHA-512-EXPR', 'tls-exporter', verifier);
    expect((await expr.create(ctx()).start(initial(Buffer.alloc(32, 7)))).kind).to.equal('success');
    expect((await expr.create(ctx()).start(initial(Buffer.alloc(0)))).kind).to.equal('failure');
    const endpTls: TlsChannel = { version: 'TLSv1.2', bindings: () => ['tls-server-end-point', 'tls-unique'], bindingData: (t) => (t === 'tls-exporter' ? undefined : Buffer.alloc(16, t === 'tls-unique' ? 1 : 2)) };
    const endp = htMechanism('HT-SHA-512-ENDP', 'tls-server-end-point', verifier);
    const uniq = htMechanism('HT-SHA-512-UNIQ', 'tls-unique', verifier);
    expect(endp.available(ctx({ tls: endpTls }))).to.equal(true);
    expect(uniq.available(ctx())).to.equal(false);
    expect((await endp.create(ctx({ tls: endpTls })).start(initial(Buffer.alloc(16, 2)))).kind).to.equal('success');
    expect((await uniq.create(ctx({ tls: endpTls })).start(initial(Buffer.alloc(16, 1)))).kind).to.equal('success');
    expect((await uniq.create(ctx({ tls: endpTls })).start(initial(Buffer.alloc(16, 2)))).kind).to.equal('failure');
  });
});
