import { performance } from 'node:perf_hooks';
import { expect } from 'chai';
import { LoginThrottle } from '../../../lib/accounts/throttle.js';
import type { SaslContext, SaslExchange, SaslMechanism, SaslStep } from '../../../lib/sasl/mechanism.js';
import { SaslNegotiator, type SaslNegotiatorOptions } from '../../../lib/sasl/negotiator.js';
import { defaultMechanisms } from '../../../lib/sasl/registry.js';
import { ScramClient } from './scram-client.js';
import { context, fakeTls, memoryAccounts, type Accounts } from './support.js';

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
const plain = (user: string, password: string) => b64(`\u0000${user}\u0000${password}`);

/** A mechanism that records what it is given and challenges forever. */
function recorder(): { mech: SaslMechanism; seen: Array<Buffer | undefined> } {
  const seen: Array<Buffer | undefined> = [];
  const exchange: SaslExchange = {
    async start(initial) {
      seen.push(initial);
      return { kind: 'challenge', data: Buffer.from('more') };
    },
    async step(response) {
      seen.push(response);
      return { kind: 'challenge', data: Buffer.from('more') };
    },
  };
  return { seen, mech: { name: 'X-RECORD', available: () => true, create: () => exchange } };
}

describe('SaslNegotiator', () => {
  let a: Accounts;
  let now: number;
  let throttle: LoginThrottle;
  before(async () => {
    a = await memoryAccounts();
  });
  after(async () => a.close());
  beforeEach(() => {
    now = 1_000_000;
    throttle = new LoginThrottle({ now: () => now, failureDelayMs: 0 });
  });

  function negotiator(over: Partial<SaslNegotiatorOptions> & { ctx?: SaslContext } = {}): SaslNegotiator {
    return new SaslNegotiator({
      mechanisms: defaultMechanisms(),
      ctx: context(a.accounts, fakeTls()),
      throttle,
      remoteAddress: '192.0.2.1',
      ...over,
    });
  }

  describe('advertisement', () => {
    it('offers -PLUS, then SCRAM, then PLAIN, strongest first, over TLS with channel binding', () => {
      expect(negotiator().offered()).to.deep.equal(defaultMechanisms().map((m) => m.name));
    });

    it('offers only SCRAM without -PLUS and without PLAIN on a plaintext connection', () => {
      expect(negotiator({ ctx: context(a.accounts) }).offered()).to.deep.equal(['SCRAM-SHA-512', 'SCRAM-SHA-256', 'SCRAM-SHA-1']);
    });

    it('announces the connection’s channel binding types (XEP-0440) only when -PLUS is offered', () => {
      const tls = fakeTls({ 'tls-exporter': Buffer.alloc(32), 'tls-server-end-point': Buffer.alloc(32) });
      expect(negotiator({ ctx: context(a.accounts, tls) }).channelBindings()).to.deep.equal(['tls-exporter', 'tls-server-end-point']);
      expect(negotiator({ ctx: context(a.accounts) }).channelBindings()).to.deep.equal([]);
      const noPlus = defaultMechanisms().filter((m) => !m.name.endsWith('-PLUS'));
      expect(negotiator({ mechanisms: noPlus, ctx: context(a.accounts, tls) }).channelBindings()).to.deep.equal([]);
    });
  });

  describe('exchanges', () => {
    it('runs a SCRAM exchange in base64 and reports the success', async () => {
      const results: string[] = [];
      const n = negotiator({ onResult: (m, r) => results.push(`${m} ${r}`) });
      const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'r0m30' });
      const first = await n.begin('SCRAM-SHA-256', b64(client.first()));
      expect(first.kind).to.equal('challenge');
      if (first.kind !== 'challenge') return;
      const final = await n.respond(b64(client.final(first.data)));
      expect(final).to.include({ kind: 'success', user: 'juliet' });
      expect(client.verifyServerFinal(final.kind === 'success' ? final.data : undefined)).to.equal(true);
      expect(results).to.deep.equal(['SCRAM-SHA-256 success']);
      expect(n.succeeded).to.equal(true);
    });

    it('runs PLAIN over TLS', async () => {
      expect(await negotiator().begin('PLAIN', plain('juliet', 'r0m30'))).to.deep.equal({ kind: 'success', user: 'juliet' });
    });

    it('refuses PLAIN on a plaintext connection as invalid-mechanism', async () => {
      const n = negotiator({ ctx: context(a.accounts) });
      expect(await n.begin('PLAIN', plain('juliet', 'r0m30'))).to.include({ kind: 'failure', condition: 'invalid-mechanism' });
    });

    it('refuses an unknown mechanism as invalid-mechanism and reports the failure', async () => {
      const results: string[] = [];
      const n = negotiator({ onResult: (m, r) => results.push(`${m} ${r}`) });
      expect(await n.begin('DIGEST-MD5', undefined)).to.include({ kind: 'failure', condition: 'invalid-mechanism' });
      expect(results).to.deep.equal(['DIGEST-MD5 failure']);
    });

    it('refuses further steps after a success', async () => {
      const n = negotiator();
      await n.begin('PLAIN', plain('juliet', 'r0m30'));
      expect(await n.respond(plain('juliet', 'r0m30'))).to.include({ kind: 'failure', condition: 'malformed-request' });
      expect(await n.begin('PLAIN', plain('juliet', 'r0m30'))).to.include({ kind: 'failure', condition: 'malformed-request' });
      expect(n.succeeded).to.equal(true);
    });

    it('refuses a response when no exchange is in progress', async () => {
      expect(await negotiator().respond(b64('x'))).to.include({ kind: 'failure', condition: 'malformed-request' });
    });

    it('answers an abort with aborted and ends the exchange', async () => {
      const n = negotiator();
      const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'r0m30' });
      await n.begin('SCRAM-SHA-256', b64(client.first()));
      expect(n.abort()).to.deep.equal({ kind: 'failure', condition: 'aborted' });
      expect(await n.respond(b64('c=biws'))).to.include({ kind: 'failure', condition: 'malformed-request' });
    });

    it('answers temporary-auth-failure when a mechanism throws, and passes the error on', async () => {
      const errors: unknown[] = [];
      const boom: SaslMechanism = {
        name: 'X-BOOM',
        available: () => true,
        create: () => ({
          start: async () => {
            throw new Error('storage down');
          },
          step: async (): Promise<SaslStep> => ({ kind: 'failure', condition: 'aborted' }),
        }),
      };
      const n = negotiator({ mechanisms: [boom], onError: (e) => errors.push(e) });
      expect(await n.begin('X-BOOM', undefined)).to.deep.equal({ kind: 'failure', condition: 'temporary-auth-failure' });
      expect(errors).to.have.length(1);
    });
  });

  describe('encoding and limits', () => {
    it('refuses bad base64 (characters, whitespace, padding, pad bits) as incorrect-encoding', async () => {
      for (const bad of ['not base64!', 'AGp1 bGlldA==', 'AGp1bGlldA', 'AGp1bGlldA=', 'AGp1bGlldA===', 'AB==', 'AGp1bGlldA==\n']) {
        expect(await negotiator().begin('PLAIN', bad), JSON.stringify(bad)).to.include({ kind: 'failure', condition: 'incorrect-encoding' });
      }
      const { mech } = recorder();
      const n = negotiator({ mechanisms: [mech] });
      await n.begin('X-RECORD', undefined);
      expect(await n.respond('%%%%')).to.include({ kind: 'failure', condition: 'incorrect-encoding' });
    });

    it('passes "=" as an empty initial response and no text as none', async () => {
      const { mech, seen } = recorder();
      await negotiator({ mechanisms: [mech] }).begin('X-RECORD', '=');
      await negotiator({ mechanisms: [mech] }).begin('X-RECORD', undefined);
      await negotiator({ mechanisms: [mech] }).begin('X-RECORD', '');
      expect(seen[0]).to.be.instanceOf(Buffer);
      expect(seen[0]!.length).to.equal(0);
      expect(seen.slice(1)).to.deep.equal([undefined, undefined]);
    });

    it('passes an empty response element as an empty response', async () => {
      const { mech, seen } = recorder();
      const n = negotiator({ mechanisms: [mech] });
      await n.begin('X-RECORD', undefined);
      await n.respond('');
      expect(seen[1]!.length).to.equal(0);
    });

    it('ends an exchange that takes too many steps as malformed-request', async () => {
      const { mech } = recorder();
      const n = negotiator({ mechanisms: [mech], maxSteps: 3 });
      await n.begin('X-RECORD', undefined);
      expect((await n.respond(b64('1'))).kind).to.equal('challenge');
      expect((await n.respond(b64('2'))).kind).to.equal('challenge');
      expect(await n.respond(b64('3'))).to.include({ kind: 'failure', condition: 'malformed-request' });
    });

    it('refuses a response larger than the limit as malformed-request', async () => {
      const { mech, seen } = recorder();
      const n = negotiator({ mechanisms: [mech], maxResponseBytes: 100 });
      await n.begin('X-RECORD', b64(Buffer.alloc(100)));
      expect(await n.respond(b64(Buffer.alloc(101)))).to.include({ kind: 'failure', condition: 'malformed-request' });
      expect(seen).to.have.length(1);
    });
  });

  describe('throttling', () => {
    it('answers each further failure later (progressive delay), and a success at once', async () => {
      throttle = new LoginThrottle({ now: () => now, failureDelayMs: 60, maxFailureDelayMs: 1000 });
      const timed = async (password: string) => {
        const t0 = performance.now();
        const step = await negotiator().begin('PLAIN', plain('juliet', password));
        return { step, ms: performance.now() - t0 };
      };
      const first = await timed('wrong');
      const second = await timed('wrong');
      expect(first.step).to.include({ condition: 'not-authorized' });
      expect(first.ms).to.be.at.least(55);
      expect(second.ms).to.be.at.least(115);
      const ok = await timed('r0m30');
      expect(ok.step).to.include({ kind: 'success' });
      expect(ok.ms).to.be.below(first.ms + 50);
    });

    it('locks an account after 5 failures with temporary-auth-failure, even for the right password, then lets it in again', async () => {
      for (let i = 0; i < 5; i++) {
        expect(await negotiator().begin('PLAIN', plain('juliet', 'wrong'))).to.include({ condition: 'not-authorized' });
      }
      expect(await negotiator().begin('PLAIN', plain('juliet', 'r0m30'))).to.deep.equal({
        kind: 'failure',
        condition: 'temporary-auth-failure',
      });
      // Another account from the same address is not affected.
      expect(await negotiator().begin('PLAIN', plain('romeo', 'balcony'))).to.include({ kind: 'success' });
      now += 61_000;
      expect(await negotiator().begin('PLAIN', plain('juliet', 'r0m30'))).to.include({ kind: 'success' });
    });

    it('locks an unknown account exactly like an existing one', async () => {
      const answers = [];
      for (const user of ['juliet', 'nobody']) {
        for (let i = 0; i < 5; i++) await negotiator({ remoteAddress: `198.51.100.${i}` }).begin('PLAIN', plain(user, 'wrong'));
        answers.push(await negotiator({ remoteAddress: '203.0.113.9' }).begin('PLAIN', plain(user, 'wrong')));
      }
      expect(answers[0]).to.deep.equal({ kind: 'failure', condition: 'temporary-auth-failure' });
      expect(answers[1]).to.deep.equal(answers[0]);
    });

    it('refuses a locked account already at the SCRAM client-first-message', async () => {
      for (let i = 0; i < 5; i++) await negotiator().begin('PLAIN', plain('juliet', 'wrong'));
      const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'r0m30' });
      expect(await negotiator().begin('SCRAM-SHA-256', b64(client.first()))).to.deep.equal({
        kind: 'failure',
        condition: 'temporary-auth-failure',
      });
    });

    it('locks an address after 20 failures, whatever the account, and not other addresses', async () => {
      for (let i = 0; i < 20; i++) await negotiator().begin('PLAIN', plain(`user${i}`, 'wrong'));
      expect(await negotiator().begin('PLAIN', plain('romeo', 'balcony'))).to.deep.equal({
        kind: 'failure',
        condition: 'temporary-auth-failure',
      });
      expect(await negotiator({ remoteAddress: '192.0.2.2' }).begin('PLAIN', plain('romeo', 'balcony'))).to.include({ kind: 'success' });
    });

    it('does not count aborts as failures', async () => {
      for (let i = 0; i < 6; i++) {
        const n = negotiator();
        const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'x' });
        await n.begin('SCRAM-SHA-256', b64(client.first()));
        n.abort();
      }
      expect(throttle.check('192.0.2.1', 'juliet@example.org').allowed).to.equal(true);
      expect(await negotiator().begin('PLAIN', plain('juliet', 'r0m30'))).to.include({ kind: 'success' });
    });
  });
});
