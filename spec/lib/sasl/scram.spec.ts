import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { deriveScramCredential } from '../../../lib/accounts/scram-keys.js';
import type { CredentialLookup, ScramHash } from '../../../lib/accounts/types.js';
import { endPointHashOf, tlsChannelOf, type SaslContext } from '../../../lib/sasl/mechanism.js';
import { scramMechanism } from '../../../lib/sasl/scram.js';
import { ScramClient } from './scram-client.js';
import { HOST, challenge, context, fakeTls, memoryAccounts, scramRound, type Accounts } from './support.js';
import { opensslCert, rsaCert, tlsPair, type TestCert } from './tls-fixture.js';

/** A lookup that knows one user with a fixed salt, as in the RFC examples. */
function vectorLookup(hash: ScramHash, salt: string): CredentialLookup {
  return {
    async scram(_host, user, h) {
      if (user !== 'user' || h !== hash) throw new Error(`unexpected lookup ${user} ${h}`);
      return { credential: await deriveScramCredential(hash, 'pencil', Buffer.from(salt, 'base64'), 4096), real: true };
    },
    async verifyPassword() {
      return false;
    },
  };
}

function vectorCtx(hash: ScramHash, salt: string): SaslContext {
  return { host: HOST, tls: undefined, credentials: vectorLookup(hash, salt) };
}

describe('SCRAM', () => {
  describe('RFC test vectors', () => {
    it('answers the RFC 5802 §5 SCRAM-SHA-1 example with its exact server messages', async () => {
      const mech = scramMechanism('SHA-1', false, { nonce: () => '3rfcNHYJY1ZVvWVs7j' });
      const ex = mech.create(vectorCtx('SHA-1', 'QSXCR+Q6sek8bf92'));
      const first = await ex.start(Buffer.from('n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL'));
      expect(challenge(first).toString()).to.equal('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096');
      const final = await ex.step(
        Buffer.from('c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts='),
      );
      expect(final.kind).to.equal('success');
      if (final.kind !== 'success') return;
      expect(final.data?.toString()).to.equal('v=rmF9pqV8S7suAoZWja4dJRkFsKQ=');
      expect(final.user).to.equal('user');
    });

    it('answers the RFC 7677 §3 SCRAM-SHA-256 example with its exact server messages', async () => {
      const mech = scramMechanism('SHA-256', false, { nonce: () => '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0' });
      const ex = mech.create(vectorCtx('SHA-256', 'W22ZaJ0SNY7soEsUEjb6gQ=='));
      const first = await ex.start(Buffer.from('n,,n=user,r=rOprNGfwEbeRWgbNEkqO'));
      expect(challenge(first).toString()).to.equal(
        'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
      );
      const final = await ex.step(
        Buffer.from(
          'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
        ),
      );
      expect(final.kind).to.equal('success');
      if (final.kind !== 'success') return;
      expect(final.data?.toString()).to.equal('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
    });

    it('refuses the RFC 5802 example when one bit of the proof is flipped', async () => {
      const mech = scramMechanism('SHA-1', false, { nonce: () => '3rfcNHYJY1ZVvWVs7j' });
      const ex = mech.create(vectorCtx('SHA-1', 'QSXCR+Q6sek8bf92'));
      await ex.start(Buffer.from('n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL'));
      const final = await ex.step(
        Buffer.from('c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=w0X8v3Bz2T0CJGbJQyF0X+HI4Ts='),
      );
      expect(final).to.deep.equal({ kind: 'failure', condition: 'not-authorized' });
    });
  });

  describe('with real accounts', () => {
    let a: Accounts;
    before(async () => {
      a = await memoryAccounts();
      await a.accounts.create(HOST, 'a,b=c', 'commas');
    });
    after(async () => a.close());

    for (const hash of ['SHA-1', 'SHA-256', 'SHA-512'] as const) {
      it(`authenticates with SCRAM-${hash} and proves in v= that the server holds the keys`, async () => {
        const client = new ScramClient({ hash, username: 'juliet', password: 'r0m30' });
        const { result } = await scramRound(scramMechanism(hash, false).create(context(a.accounts)), client);
        expect(result.kind).to.equal('success');
        if (result.kind !== 'success') return;
        expect(result.user).to.equal('juliet');
        expect(client.verifyServerFinal(result.data)).to.equal(true);
      });
    }

    it('sends a fresh server nonce of 24 random bytes after the client nonce', async () => {
      const nonces = new Set<string>();
      for (let i = 0; i < 2; i++) {
        const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'r0m30', nonce: 'abc' });
        const first = challenge(await scramMechanism('SHA-256', false).create(context(a.accounts)).start(client.first()));
        const m = /^r=abc([A-Za-z0-9+/]{32}),/.exec(first.toString());
        expect(m, first.toString()).to.not.equal(null);
        nonces.add(m![1]!);
      }
      expect(nonces.size).to.equal(2);
    });

    it('refuses a wrong password as not-authorized', async () => {
      const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'wrong' });
      const { result } = await scramRound(scramMechanism('SHA-256', false).create(context(a.accounts)), client);
      expect(result).to.deep.equal({ kind: 'failure', condition: 'not-authorized' });
    });

    it('fails an unknown user exactly like a wrong password, after a server-first-message of the same shape', async () => {
      const shape = (b: Buffer) => b.toString().replace(/^r=[^,]+,s=([^,]+),i=(\d+)$/, (_m, s: string, i: string) => `salt:${Buffer.from(s, 'base64').length} i:${i}`);
      const known = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'wrong' });
      const unknown = new ScramClient({ hash: 'SHA-256', username: 'nobody', password: 'wrong' });
      const r1 = await scramRound(scramMechanism('SHA-256', false).create(context(a.accounts)), known);
      const r2 = await scramRound(scramMechanism('SHA-256', false).create(context(a.accounts)), unknown);
      expect(shape(r2.serverFirst)).to.equal(shape(r1.serverFirst));
      expect(shape(r1.serverFirst)).to.equal('salt:16 i:4096');
      expect(r2.result).to.deep.equal(r1.result);
    });

    it('shows an unknown user the same salt on every attempt', async () => {
      const salts = [];
      for (let i = 0; i < 2; i++) {
        const client = new ScramClient({ hash: 'SHA-256', username: 'nobody', password: 'x' });
        await scramRound(scramMechanism('SHA-256', false).create(context(a.accounts)), client);
        salts.push(client.serverFirst!.salt.toString('hex'));
      }
      expect(salts[0]).to.equal(salts[1]);
    });

    it('refuses a credential the lookup marks as not real, even when the proof matches it', async () => {
      const lookup = vectorLookup('SHA-256', 'W22ZaJ0SNY7soEsUEjb6gQ==');
      const notReal: CredentialLookup = {
        scram: async (host, user, hash) => ({ credential: (await lookup.scram(host, user, hash)).credential, real: false }),
        verifyPassword: lookup.verifyPassword,
      };
      const client = new ScramClient({ hash: 'SHA-256', username: 'user', password: 'pencil' });
      const ctx: SaslContext = { host: HOST, tls: undefined, credentials: notReal };
      const { result } = await scramRound(scramMechanism('SHA-256', false).create(ctx), client);
      expect(result).to.deep.equal({ kind: 'failure', condition: 'not-authorized' });
      // The same exchange with real: true succeeds, so only the flag made the difference.
      const ok = await scramRound(scramMechanism('SHA-256', false).create(vectorCtx('SHA-256', 'W22ZaJ0SNY7soEsUEjb6gQ==')), new ScramClient({ hash: 'SHA-256', username: 'user', password: 'pencil' }));
      expect(ok.result.kind).to.equal('success');
    });

    it('prepares the username (case-folded) and reports the prepared localpart', async () => {
      const client = new ScramClient({ hash: 'SHA-256', username: 'JuLiEt', password: 'r0m30' });
      const { result } = await scramRound(scramMechanism('SHA-256', false).create(context(a.accounts)), client);
      expect(result).to.include({ kind: 'success', user: 'juliet' });
    });

    it('unescapes =2C and =3D in the username', async () => {
      const client = new ScramClient({ hash: 'SHA-256', username: 'a,b=c', password: 'commas' });
      expect(client.first().toString()).to.contain('n=a=2Cb=3Dc,');
      const { result } = await scramRound(scramMechanism('SHA-256', false).create(context(a.accounts)), client);
      expect(result).to.include({ kind: 'success', user: 'a,b=c' });
    });

    it('rejects a username with an "=" that is not =2C or =3D as malformed-request', async () => {
      const step = await scramMechanism('SHA-256', false).create(context(a.accounts)).start(Buffer.from('n,,n=ju=41liet,r=abc'));
      expect(step).to.include({ kind: 'failure', condition: 'malformed-request' });
    });

    it('refuses a final nonce that does not start with the client nonce', async () => {
      const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'r0m30', nonce: 'clientnonce' });
      const ex = scramMechanism('SHA-256', false).create(context(a.accounts));
      const first = challenge(await ex.start(client.first()));
      const server = first.toString().slice(2, first.indexOf(',')).slice('clientnonce'.length);
      const result = await ex.step(client.final(first, { nonce: `otherclient${server}` }));
      expect(result).to.include({ kind: 'failure', condition: 'not-authorized' });
    });

    it('refuses a final nonce without the server part', async () => {
      const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'r0m30', nonce: 'clientnonce' });
      const ex = scramMechanism('SHA-256', false).create(context(a.accounts));
      const first = challenge(await ex.start(client.first()));
      const result = await ex.step(client.final(first, { nonce: 'clientnonce' }));
      expect(result).to.include({ kind: 'failure', condition: 'not-authorized' });
    });

    it('refuses a c= that is not the base64 of the GS2 header', async () => {
      const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'r0m30' });
      const ex = scramMechanism('SHA-256', false).create(context(a.accounts));
      const first = challenge(await ex.start(client.first()));
      const result = await ex.step(client.final(first, { channelBinding: Buffer.from('y,,').toString('base64') }));
      expect(result).to.include({ kind: 'failure', condition: 'not-authorized' });
    });

    it('refuses an authzid naming another user as invalid-authzid', async () => {
      const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'r0m30', authzid: `romeo@${HOST}` });
      const step = await scramMechanism('SHA-256', false).create(context(a.accounts)).start(client.first());
      expect(step).to.include({ kind: 'failure', condition: 'invalid-authzid' });
    });

    it('refuses an authzid with a resource or another domain as invalid-authzid', async () => {
      for (const authzid of [`juliet@${HOST}/balcony`, 'juliet@example.net', 'romeo']) {
        const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'r0m30', authzid });
        const step = await scramMechanism('SHA-256', false).create(context(a.accounts)).start(client.first());
        expect(step, authzid).to.include({ kind: 'failure', condition: 'invalid-authzid' });
      }
    });

    it('accepts an authzid equal to the bare JID or to the username', async () => {
      for (const authzid of [`juliet@${HOST}`, 'Juliet@Example.ORG', 'juliet']) {
        const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'r0m30', authzid });
        const { result } = await scramRound(scramMechanism('SHA-256', false).create(context(a.accounts)), client);
        expect(result, authzid).to.include({ kind: 'success', user: 'juliet' });
      }
    });

    it('refuses the y flag as a downgrade when a -PLUS mechanism is offered', async () => {
      const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'r0m30', flag: 'y' });
      const ctx = context(a.accounts, fakeTls(), ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']);
      const step = await scramMechanism('SHA-256', false).create(ctx).start(client.first());
      expect(step).to.include({ kind: 'failure', condition: 'not-authorized' });
    });

    it('treats channel bindings on the connection as an offer of -PLUS when the offer list is unknown', async () => {
      const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'r0m30', flag: 'y' });
      const step = await scramMechanism('SHA-256', false).create(context(a.accounts, fakeTls())).start(client.first());
      expect(step).to.include({ kind: 'failure', condition: 'not-authorized' });
    });

    it('accepts the y flag when no -PLUS mechanism is offered', async () => {
      const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'r0m30', flag: 'y' });
      const ctx = context(a.accounts, fakeTls(), ['SCRAM-SHA-256', 'PLAIN']);
      const { result } = await scramRound(scramMechanism('SHA-256', false).create(ctx), client);
      expect(result).to.include({ kind: 'success', user: 'juliet' });
    });

    it('refuses p= on a mechanism without -PLUS as malformed-request', async () => {
      const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'r0m30', flag: 'p=tls-exporter' });
      const step = await scramMechanism('SHA-256', false).create(context(a.accounts, fakeTls())).start(client.first());
      expect(step).to.include({ kind: 'failure', condition: 'malformed-request' });
    });

    it('refuses the reserved m= extension as malformed-request', async () => {
      const step = await scramMechanism('SHA-256', false).create(context(a.accounts)).start(Buffer.from('n,,m=ext,n=juliet,r=abc'));
      expect(step).to.include({ kind: 'failure', condition: 'malformed-request' });
    });

    it('refuses a client-first-message that is not UTF-8 or lacks n= and r=', async () => {
      for (const msg of [Buffer.from([0x6e, 0x2c, 0x2c, 0xff]), Buffer.from('n,,r=abc,n=juliet'), Buffer.from('x,,n=juliet,r=abc')]) {
        const step = await scramMechanism('SHA-256', false).create(context(a.accounts)).start(msg);
        expect(step).to.include({ kind: 'failure', condition: 'malformed-request' });
      }
    });

    it('asks for the client-first-message with an empty challenge when there is no initial response', async () => {
      const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'r0m30' });
      const ex = scramMechanism('SHA-256', false).create(context(a.accounts));
      expect(challenge(await ex.start(undefined)).length).to.equal(0);
      const first = challenge(await ex.step(client.first()));
      expect(await ex.step(client.final(first))).to.include({ kind: 'success' });
    });

    it('refuses any message after the exchange is over', async () => {
      const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'r0m30' });
      const ex = scramMechanism('SHA-256', false).create(context(a.accounts));
      const first = challenge(await ex.start(client.first()));
      const final = client.final(first);
      expect(await ex.step(final)).to.include({ kind: 'success' });
      expect(await ex.step(final)).to.include({ kind: 'failure', condition: 'malformed-request' });
    });

    describe('-PLUS without sockets', () => {
      it('is available only when the connection supports a channel binding', () => {
        const plus = scramMechanism('SHA-256', true);
        expect(plus.name).to.equal('SCRAM-SHA-256-PLUS');
        expect(plus.available(context(a.accounts))).to.equal(false);
        expect(plus.available(context(a.accounts, fakeTls({})))).to.equal(false);
        expect(plus.available(context(a.accounts, fakeTls()))).to.equal(true);
        expect(scramMechanism('SHA-256', false).available(context(a.accounts))).to.equal(true);
      });

      it('refuses a -PLUS exchange whose GS2 flag is not p= as malformed-request', async () => {
        for (const flag of ['n', 'y']) {
          const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'r0m30', flag });
          const step = await scramMechanism('SHA-256', true).create(context(a.accounts, fakeTls())).start(client.first());
          expect(step, flag).to.include({ kind: 'failure', condition: 'malformed-request' });
        }
      });

      it('refuses p= with a binding type the connection does not support as not-authorized', async () => {
        for (const flag of ['p=tls-unique', 'p=tls-made-up']) {
          const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'r0m30', flag });
          const step = await scramMechanism('SHA-256', true).create(context(a.accounts, fakeTls())).start(client.first());
          expect(step, flag).to.include({ kind: 'failure', condition: 'not-authorized' });
        }
      });

      it('refuses channel binding data that differs from the connection’s', async () => {
        const client = new ScramClient({
          hash: 'SHA-256', username: 'juliet', password: 'r0m30', flag: 'p=tls-exporter', cbData: Buffer.alloc(32, 8),
        });
        const { result } = await scramRound(scramMechanism('SHA-256', true).create(context(a.accounts, fakeTls())), client);
        expect(result).to.include({ kind: 'failure', condition: 'not-authorized' });
      });
    });

    describe('-PLUS over real TLS', function () {
      this.timeout(30_000);
      let cert: TestCert;
      before(() => {
        cert = rsaCert('sha256');
      });

      async function plusLogin(version: 'TLSv1.2' | 'TLSv1.3', type: string, clientData: (c: import('node:tls').TLSSocket) => Buffer) {
        const pair = await tlsPair(cert, version);
        try {
          const channel = tlsChannelOf(pair.server);
          const client = new ScramClient({
            hash: 'SHA-256', username: 'juliet', password: 'r0m30', flag: `p=${type}`, cbData: clientData(pair.client),
          });
          const mech = scramMechanism('SHA-256', true);
          const ctx = context(a.accounts, channel);
          expect(mech.available(ctx)).to.equal(true);
          const { result } = await scramRound(mech.create(ctx), client);
          return { result, client, channel };
        } finally {
          await pair.close();
        }
      }

      it('binds to tls-exporter on TLS 1.3 (RFC 9266)', async () => {
        const { result, client, channel } = await plusLogin('TLSv1.3', 'tls-exporter', (c) =>
          c.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0)),
        );
        expect(result).to.include({ kind: 'success', user: 'juliet' });
        expect(client.verifyServerFinal(result.kind === 'success' ? result.data : undefined)).to.equal(true);
        expect(channel.version).to.equal('TLSv1.3');
        expect(channel.bindings()).to.deep.equal(['tls-exporter', 'tls-server-end-point']);
      });

      it('binds to tls-unique, the client Finished message, on TLS 1.2', async () => {
        const { result, channel } = await plusLogin('TLSv1.2', 'tls-unique', (c) => c.getFinished()!);
        expect(result).to.include({ kind: 'success', user: 'juliet' });
        expect(channel.bindings()).to.deep.equal(['tls-unique', 'tls-server-end-point']);
      });

      for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
        it(`binds to tls-server-end-point, the SHA-256 of the server certificate, on ${version}`, async () => {
          const { result } = await plusLogin(version, 'tls-server-end-point', (c) =>
            createHash('sha256').update(c.getPeerCertificate().raw).digest(),
          );
          expect(result).to.include({ kind: 'success', user: 'juliet' });
        });
      }

      it('refuses tls-exporter on TLS 1.2, where it is not defined', async () => {
        const { result } = await plusLogin('TLSv1.2', 'tls-exporter', (c) =>
          c.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0)),
        );
        expect(result).to.include({ kind: 'failure', condition: 'not-authorized' });
      });

      it('refuses the binding data of another TLS connection', async () => {
        const other = await tlsPair(cert, 'TLSv1.3');
        const foreign = other.client.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
        await other.close();
        const { result } = await plusLogin('TLSv1.3', 'tls-exporter', () => foreign);
        expect(result).to.include({ kind: 'failure', condition: 'not-authorized' });
      });

      it('hashes a certificate signed with SHA-1 with SHA-256 for tls-server-end-point (RFC 5929 §4.1)', async () => {
        const sha1 = rsaCert('sha1');
        const pair = await tlsPair(sha1, 'TLSv1.3');
        try {
          const data = tlsChannelOf(pair.server).bindingData('tls-server-end-point');
          expect(data?.toString('hex')).to.equal(createHash('sha256').update(sha1.der).digest('hex'));
        } finally {
          await pair.close();
        }
      });
    });
  });

  describe('tls-server-end-point hash choice', () => {
    it('uses the certificate signature hash: SHA-384 and SHA-512 for RSA, SHA-256 for SHA-1', function () {
      this.timeout(30_000);
      expect(endPointHashOf(rsaCert('sha384').der)).to.equal('sha384');
      expect(endPointHashOf(rsaCert('sha512').der)).to.equal('sha512');
      expect(endPointHashOf(rsaCert('sha1').der)).to.equal('sha256');
    });

    it('uses SHA-384 for ecdsa-with-SHA384 and for RSASSA-PSS with SHA-384', function () {
      const ec = opensslCert(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-sha384']);
      const pss = opensslCert(['-newkey', 'rsa-pss', '-pkeyopt', 'rsa_keygen_bits:2048', '-sha384']);
      if (ec === undefined || pss === undefined) this.skip(); // needs the openssl command
      expect(endPointHashOf(ec!.der)).to.equal('sha384');
      expect(endPointHashOf(pss!.der)).to.equal('sha384');
    });

    it('offers no tls-server-end-point for an Ed25519 certificate, whose signature has no single hash', async function () {
      const ed = opensslCert(['-newkey', 'ed25519']);
      if (ed === undefined) this.skip();
      expect(endPointHashOf(ed!.der)).to.equal(undefined);
      const pair = await tlsPair(ed!, 'TLSv1.3');
      try {
        expect(tlsChannelOf(pair.server).bindings()).to.deep.equal(['tls-exporter']);
      } finally {
        await pair.close();
      }
    });

    it('returns undefined for bytes that are not a certificate', () => {
      expect(endPointHashOf(Buffer.from([0x30, 0x82, 0xff]))).to.equal(undefined);
      expect(endPointHashOf(Buffer.alloc(0))).to.equal(undefined);
    });
  });
});
