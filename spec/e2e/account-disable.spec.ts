// A disabled account keeps its data but cannot log in (SASL <account-disabled/>).
import { expect } from 'chai';
import { RawClient } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('e2e: disabled accounts', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
    await srv.addUser('alice', 'secret-pw');
  });
  after(async () => srv?.stop());

  async function attempt(): Promise<string> {
    const c = await RawClient.connect(srv.port('c2s-tls'), { directTls: true });
    await c.openStream();
    const from = c.elements.length;
    c.sendAuth('PLAIN', Buffer.from('\0alice\0secret-pw'));
    const answer = await c.saslAnswer(from);
    c.close();
    return answer.name === 'failure' ? answer.elements()[0]?.name ?? 'failure' : answer.name;
  }

  it('refuses the right password with account-disabled while disabled, and accepts it again once enabled', async () => {
    expect(await srv.server.accounts.setDisabled('localhost', 'alice', true, 'spam')).to.equal(true);
    expect(await attempt()).to.equal('account-disabled');
    await srv.server.accounts.setDisabled('localhost', 'alice', false);
    expect(await attempt()).to.equal('success');
  });

  // SCRAM reads the flag with the credential (one query), not after the proof.
  it('refuses SCRAM with account-disabled while disabled, and accepts it again once enabled', async () => {
    const scram = async (): Promise<string> => {
      const c = await RawClient.connect(srv.port('c2s-tls'), { directTls: true });
      await c.openStream();
      try {
        await c.authenticate('alice', 'secret-pw', 'SCRAM-SHA-256');
        return 'success';
      } catch (err) {
        return /account-disabled/.test(String(err)) ? 'account-disabled' : String(err);
      } finally {
        c.close();
      }
    };
    await srv.server.accounts.setDisabled('localhost', 'alice', true, 'spam');
    expect(await scram()).to.equal('account-disabled');
    await srv.server.accounts.setDisabled('localhost', 'alice', false);
    expect(await scram()).to.equal('success');
  });

  it('reports false when disabling an account that does not exist', async () => {
    expect(await srv.server.accounts.setDisabled('localhost', 'nobody', true)).to.equal(false);
  });
});
