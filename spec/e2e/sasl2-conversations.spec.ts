// XEP-0388 SASL2 with XEP-0386 Bind2, XEP-0198 inline and XEP-0484 FAST over real sockets, the
// way Conversations and Gajim use them (/work/shared/CLIENTS.md).
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { DEFAULT_PASSWORD, escapeText, loggedIn, RawClient, sleep, type XNode } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { ScramClient } from '../lib/sasl/scram-client.js';

const SASL2 = 'urn:xmpp:sasl:2';
const BIND2 = 'urn:xmpp:bind:0';
const FAST = 'urn:xmpp:fast:0';
const SM = 'urn:xmpp:sm:3';
const SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';

/** Connected, STARTTLS done, the secure stream's features read. */
async function secured(srv: TestServer): Promise<{ c: RawClient; features: XNode }> {
  const c = await RawClient.connect(srv.port('c2s'), { domain: srv.domain });
  await c.openStream();
  await c.starttls();
  const features = await c.openStream();
  return { c, features };
}

function sasl2Answer(c: RawClient, from: number): Promise<XNode> {
  return c.waitForElement((e) => e.ns === SASL2 && ['challenge', 'success', 'failure', 'continue'].includes(e.name), 5000, from);
}

const userAgent = (id: string) => `<user-agent id='${id}'><software>Conversations</software><device>Pixel</device></user-agent>`;

/** SCRAM-SHA-256 over SASL2: initial response, challenge, response; returns the final answer. */
async function scramSasl2(c: RawClient, user: string, extra: string, password = DEFAULT_PASSWORD): Promise<XNode> {
  const scram = new ScramClient({ hash: 'SHA-256', username: user, password });
  let from = c.elements.length;
  c.send(
    `<authenticate xmlns='${SASL2}' mechanism='SCRAM-SHA-256'><initial-response>${scram.first().toString('base64')}</initial-response>${extra}</authenticate>`,
  );
  const challenge = await sasl2Answer(c, from);
  if (challenge.name !== 'challenge') return challenge;
  from = c.elements.length;
  c.send(`<response xmlns='${SASL2}'>${scram.final(Buffer.from(challenge.text, 'base64')).toString('base64')}</response>`);
  const answer = await sasl2Answer(c, from);
  if (answer.name === 'success') {
    const data = answer.child('additional-data')?.text;
    expect(scram.verifyServerFinal(data === undefined ? undefined : Buffer.from(data, 'base64')), 'server signature').to.equal(true);
  }
  return answer;
}

/** HT-SHA-256-NONE with a FAST token: one round trip. */
async function fastSasl2(c: RawClient, user: string, token: string, extra: string): Promise<XNode> {
  const from = c.elements.length;
  const proof = createHmac('sha256', Buffer.from(token, 'utf8')).update('Initiator').digest();
  const initial = Buffer.concat([Buffer.from(`${user}\0`, 'utf8'), proof]).toString('base64');
  c.send(`<authenticate xmlns='${SASL2}' mechanism='HT-SHA-256-NONE'><initial-response>${initial}</initial-response>${extra}</authenticate>`);
  const answer = await sasl2Answer(c, from);
  if (answer.name === 'success') {
    const expected = createHmac('sha256', Buffer.from(token, 'utf8')).update('Responder').digest('base64');
    expect(answer.child('additional-data')?.text).to.equal(expected);
  }
  return answer;
}

const messagesWith = (c: RawClient, body: string) => c.elements.filter((e) => e.is('message') && e.child('body')?.text === body);

describe('e2e: SASL2, Bind2, inline stream management and FAST', function () {
  this.timeout(20_000);
  let srv: TestServer;
  const clients: RawClient[] = [];
  let n = 0;
  async function account(name: string): Promise<string> {
    const user = `${name}${++n}`;
    await srv.addUser(user, DEFAULT_PASSWORD);
    return user;
  }

  before(async () => {
    srv = await startTestServer({ modules: { sm: { resumeTimeout: '30s' } } });
  });
  after(async () => srv?.stop());
  afterEach(() => {
    for (const c of clients.splice(0)) c.destroy();
  });

  it('offers SASL2 with Bind2 (carbons, sm, csi inline), inline SM and FAST next to classic SASL', async () => {
    const { c, features } = await secured(srv);
    clients.push(c);
    const classic = features.child('mechanisms', SASL)!.children.map((m) => m.text);
    const auth = features.child('authentication', SASL2);
    expect(auth, features.toString()).to.not.equal(undefined);
    expect(auth!.children.filter((m) => m.is('mechanism')).map((m) => m.text)).to.deep.equal(classic);
    const inline = auth!.child('inline')!;
    const vars = inline.child('bind', BIND2)!.child('inline')!.children.map((f) => f.attrs.var);
    expect(vars).to.include.members(['urn:xmpp:carbons:2', SM, 'urn:xmpp:csi:0']);
    expect(inline.child('sm', SM)).to.not.equal(undefined);
    expect(inline.child('fast', FAST)!.children.map((m) => m.text)).to.include('HT-SHA-256-NONE');
  });

  it('Conversations: SCRAM in one round trip, Bind2 with carbons and SM, a FAST token; then FAST with inline resumption delivering unacked messages exactly once', async () => {
    const alice = await account('alice');
    const bob = await loggedIn(srv, await account('bob'));
    clients.push(bob);
    const ua = randomUUID();

    const { c: phone } = await secured(srv);
    clients.push(phone);
    const bind = `<bind xmlns='${BIND2}'><tag>Conversations.Abcd</tag><enable xmlns='urn:xmpp:carbons:2'/><enable xmlns='${SM}' resume='true'/></bind>`;
    const success = await scramSasl2(phone, alice, `${userAgent(ua)}${bind}<request-token xmlns='${FAST}' mechanism='HT-SHA-256-NONE'/>`);
    expect(success.name, success.toString()).to.equal('success');
    const jid = success.child('authorization-identifier')!.text;
    // XEP-0386 §3: the tag is in the resource as-is (alone while no other session holds it).
    expect(jid).to.equal(`${alice}@localhost/Conversations.Abcd`);
    const bound = success.child('bound', BIND2)!;
    const enabled = bound.child('enabled', SM)!;
    expect(enabled.attrs.resume).to.equal('true');
    const token = success.child('token', FAST)!;
    expect(token.attrs.token).to.have.length.greaterThan(64);
    expect(Date.parse(token.attrs.expiry!)).to.be.greaterThan(Date.now() + 13 * 86_400_000);
    // XEP-0388: no restart; the bound stream's features follow, without <bind/>.
    const after = await phone.waitForElement((e) => e.is('features'), 5000, phone.elements.indexOf(success));
    expect(after.child('bind')).to.equal(undefined);
    // The session is usable at once.
    await phone.ping();

    // Two messages the phone never acknowledges, then its connection dies.
    bob.send(`<message to='${jid}' type='chat' id='m1'><body>one</body></message>`);
    bob.send(`<message to='${jid}' type='chat' id='m2'><body>two</body></message>`);
    await phone.waitFor((t) => t.includes('two'));
    phone.destroy();
    await phone.closed;
    await sleep(100);

    const { c: again, features } = await secured(srv);
    clients.push(again);
    expect(features.child('authentication', SASL2)!.child('inline')!.child('fast', FAST)).to.not.equal(undefined);
    const from = again.elements.length;
    const resumed = await fastSasl2(again, alice, token.attrs.token!, `${userAgent(ua)}<fast xmlns='${FAST}'/><resume xmlns='${SM}' previd='${enabled.attrs.id}' h='0'/>${bind}`);
    expect(resumed.name, resumed.toString()).to.equal('success');
    expect(resumed.child('authorization-identifier')!.text).to.equal(jid);
    expect(resumed.child('resumed', SM)!.attrs.previd).to.equal(enabled.attrs.id);
    expect(resumed.child('bound', BIND2)).to.equal(undefined);
    await again.waitFor((t) => t.split('<body>two</body>').length >= 2);
    await again.ping();
    const since = again.elements.slice(from);
    expect(since.filter((e) => e.is('message') && e.child('body')?.text === 'one')).to.have.length(1);
    expect(since.filter((e) => e.is('message') && e.child('body')?.text === 'two')).to.have.length(1);
    // The resent messages come after <success/>.
    expect(since.findIndex((e) => e.is('message'))).to.be.greaterThan(since.indexOf(resumed));
    expect(messagesWith(again, 'one')).to.have.length(1);
  });

  it('signs the advertised mechanisms and channel bindings into SCRAM (XEP-0474 h attribute)', async () => {
    const user = await account('ssdp');
    const { c, features } = await secured(srv);
    clients.push(c);
    const mechs = features.child('authentication', SASL2)!.children.filter((m) => m.is('mechanism')).map((m) => m.text);
    const cbs = features.child('sasl-channel-binding', 'urn:xmpp:sasl-cb:0')?.children.map((b) => b.attrs.type!) ?? [];
    const octet = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
    let s = [...mechs].sort(octet).join('\x1e');
    if (cbs.length) s += '\x1f' + [...cbs].sort(octet).join('\x1e');
    const scram = new ScramClient({ hash: 'SHA-256', username: user, password: DEFAULT_PASSWORD });
    const from = c.elements.length;
    c.send(`<authenticate xmlns='${SASL2}' mechanism='SCRAM-SHA-256'><initial-response>${scram.first().toString('base64')}</initial-response></authenticate>`);
    const challenge = await sasl2Answer(c, from);
    const h = /(?:^|,)h=([^,]+)/.exec(Buffer.from(challenge.text, 'base64').toString())?.[1];
    expect(h).to.equal(createHash('sha256').update(s).digest('base64'));
  });

  it('answers a stream header pipelined with <starttls/> in one packet with header, features and <proceed/>, in order', async () => {
    const c = await RawClient.connect(srv.port('c2s'), { domain: srv.domain });
    clients.push(c);
    c.send(
      `<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>` +
        `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`,
    );
    const proceed = await c.waitForElement((e) => e.is('proceed', 'urn:ietf:params:xml:ns:xmpp-tls'));
    expect(c.headers).to.have.length(1);
    expect(c.elements.indexOf(proceed)).to.be.greaterThan(c.elements.findIndex((e) => e.is('features')));
  });

  it('Gajim: SASL2 without Bind2, then classic resource binding on the same stream', async () => {
    const user = await account('gajim');
    const { c } = await secured(srv);
    clients.push(c);
    const success = await scramSasl2(c, user, userAgent(randomUUID()));
    expect(success.name, success.toString()).to.equal('success');
    expect(success.child('authorization-identifier')!.text).to.equal(`${user}@localhost`);
    const features = await c.waitForElement((e) => e.is('features'), 5000, c.elements.indexOf(success));
    expect(features.child('bind', 'urn:ietf:params:xml:ns:xmpp-bind')).to.not.equal(undefined);
    const jid = await c.bind('gajim');
    expect(jid).to.equal(`${user}@localhost/gajim`);
    await c.ping();
  });

  it('answers a wrong password with <failure/> not-authorized', async () => {
    const user = await account('wrong');
    const { c } = await secured(srv);
    clients.push(c);
    const failure = await scramSasl2(c, user, userAgent(randomUUID()), 'not-the-password');
    expect(failure.name).to.equal('failure');
    expect(failure.child('not-authorized', SASL), failure.toString()).to.not.equal(undefined);
  });

  it('refuses a FAST token after a password change, and an unknown token, with credentials-expired', async () => {
    const user = await account('pw');
    const ua = randomUUID();
    const { c } = await secured(srv);
    clients.push(c);
    const success = await scramSasl2(c, user, `${userAgent(ua)}<request-token xmlns='${FAST}' mechanism='HT-SHA-256-NONE'/>`);
    const token = success.child('token', FAST)!.attrs.token!;

    const { c: ok } = await secured(srv);
    clients.push(ok);
    expect((await fastSasl2(ok, user, token, `${userAgent(ua)}<fast xmlns='${FAST}'/>`)).name).to.equal('success');

    const { c: otherUa } = await secured(srv);
    clients.push(otherUa);
    const wrongClient = await fastSasl2(otherUa, user, token, `${userAgent(randomUUID())}<fast xmlns='${FAST}'/>`);
    expect(wrongClient.name).to.equal('failure');

    await srv.server.accounts.setPassword('localhost', user, 'a-new-password');
    const { c: after } = await secured(srv);
    clients.push(after);
    const refused = await fastSasl2(after, user, token, `${userAgent(ua)}<fast xmlns='${FAST}'/>`);
    expect(refused.name).to.equal('failure');
    expect(refused.child('credentials-expired', SASL), refused.toString()).to.not.equal(undefined);
  });

  it('invalidates a token on request (<fast invalidate/>)', async () => {
    const user = await account('inv');
    const ua = randomUUID();
    const { c } = await secured(srv);
    clients.push(c);
    const token = (await scramSasl2(c, user, `${userAgent(ua)}<request-token xmlns='${FAST}' mechanism='HT-SHA-256-NONE'/>`)).child('token', FAST)!.attrs.token!;
    const { c: c2 } = await secured(srv);
    clients.push(c2);
    const used = await fastSasl2(c2, user, token, `${userAgent(ua)}<fast xmlns='${FAST}' invalidate='true'/>`);
    expect(used.name).to.equal('success');
    expect(used.child('token', FAST)).to.equal(undefined);
    const { c: c3 } = await secured(srv);
    clients.push(c3);
    expect((await fastSasl2(c3, user, token, `${userAgent(ua)}<fast xmlns='${FAST}'/>`)).name).to.equal('failure');
  });

  it('answers an inline resumption of an unknown SM-ID with <failed/> and still binds with Bind2', async () => {
    const user = await account('nores');
    const { c } = await secured(srv);
    clients.push(c);
    const success = await scramSasl2(c, user, `${userAgent(randomUUID())}<resume xmlns='${SM}' previd='nope' h='0'/><bind xmlns='${BIND2}'><tag>${escapeText('Conv')}</tag></bind>`);
    expect(success.name).to.equal('success');
    expect(success.child('failed', SM)).to.not.equal(undefined);
    expect(success.child('bound', BIND2)).to.not.equal(undefined);
    expect(success.child('authorization-identifier')!.text).to.equal(`${user}@localhost/Conv`);

    // A second client with the same tag gets a generated suffix, and the first one stays.
    const { c: second } = await secured(srv);
    clients.push(second);
    const again = await scramSasl2(second, user, `${userAgent(randomUUID())}<bind xmlns='${BIND2}'><tag>Conv</tag></bind>`);
    expect(again.child('authorization-identifier')!.text).to.match(new RegExp(`^${user}@localhost/Conv/.+`));
    await c.ping();
  });
});
