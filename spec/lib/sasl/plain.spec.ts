import { expect } from 'chai';
import { plainMechanism } from '../../../lib/sasl/plain.js';
import { HOST, challenge, context, fakeTls, memoryAccounts, type Accounts } from './support.js';

const msg = (authzid: string, authcid: string, password: string) => Buffer.from(`${authzid}\u0000${authcid}\u0000${password}`);

describe('PLAIN', () => {
  let a: Accounts;
  before(async () => {
    a = await memoryAccounts();
  });
  after(async () => a.close());

  const tlsCtx = () => context(a.accounts, fakeTls());

  it('is available only over TLS', () => {
    expect(plainMechanism.name).to.equal('PLAIN');
    expect(plainMechanism.available(context(a.accounts))).to.equal(false);
    expect(plainMechanism.available(tlsCtx())).to.equal(true);
  });

  it('authenticates with the right password and reports the prepared localpart', async () => {
    const step = await plainMechanism.create(tlsCtx()).start(msg('', 'Juliet', 'r0m30'));
    expect(step).to.deep.equal({ kind: 'success', user: 'juliet' });
  });

  it('refuses a wrong password as not-authorized', async () => {
    const step = await plainMechanism.create(tlsCtx()).start(msg('', 'juliet', 'romeo'));
    expect(step).to.deep.equal({ kind: 'failure', condition: 'not-authorized' });
  });

  it('fails an unknown user exactly like a wrong password', async () => {
    const wrong = await plainMechanism.create(tlsCtx()).start(msg('', 'juliet', 'nope'));
    const unknown = await plainMechanism.create(tlsCtx()).start(msg('', 'nobody', 'nope'));
    expect(unknown).to.deep.equal(wrong);
  });

  it('accepts an authzid equal to the bare JID or to the username', async () => {
    for (const authzid of [`juliet@${HOST}`, 'juliet']) {
      const step = await plainMechanism.create(tlsCtx()).start(msg(authzid, 'juliet', 'r0m30'));
      expect(step, authzid).to.deep.equal({ kind: 'success', user: 'juliet' });
    }
  });

  it('refuses an authzid naming another user as invalid-authzid', async () => {
    const step = await plainMechanism.create(tlsCtx()).start(msg(`romeo@${HOST}`, 'juliet', 'r0m30'));
    expect(step).to.include({ kind: 'failure', condition: 'invalid-authzid' });
  });

  it('refuses a message without exactly two NULs, or with an empty password, as malformed-request', async () => {
    for (const bad of [Buffer.from('juliet\u0000r0m30'), msg('', 'juliet', 'r0m30\u0000x'), msg('', 'juliet', ''), msg('', '', 'r0m30')]) {
      const step = await plainMechanism.create(tlsCtx()).start(bad);
      expect(step).to.include({ kind: 'failure', condition: 'malformed-request' });
    }
  });

  it('asks for the message with an empty challenge when there is no initial response', async () => {
    const ex = plainMechanism.create(tlsCtx());
    expect(challenge(await ex.start(undefined)).length).to.equal(0);
    expect(await ex.step(msg('', 'juliet', 'r0m30'))).to.deep.equal({ kind: 'success', user: 'juliet' });
    expect(await ex.step(msg('', 'juliet', 'r0m30'))).to.include({ kind: 'failure', condition: 'malformed-request' });
  });
});
