import { expect } from 'chai';
import { NS, xml } from '../../../lib/module-api.js';
import disco from '../../../modules/disco/index.js';
import time, { timezoneOffset, utcDateTime } from '../../../modules/time/index.js';
import { Harness, type TestClient } from '../../helpers/harness.js';
import { expectError, expectXml } from '../../helpers/xml-assert.js';

describe('time (XEP-0202)', () => {
  let h: Harness;
  let alice: TestClient;
  const savedTz = process.env.TZ;

  beforeEach(async () => {
    h = await Harness.start({ modules: [disco, time] });
    await h.createAccount('alice', 'pw');
    await h.createAccount('bob', 'pw');
    alice = await h.connect('alice@example.com/phone');
  });
  afterEach(async () => {
    if (savedTz === undefined) delete process.env.TZ;
    else process.env.TZ = savedTz;
    await h.stop();
  });

  it('answers the UTC time without fractional seconds and the offset', async () => {
    const before = Math.floor(Date.now() / 1000) * 1000;
    const reply = await alice.iq(xml('iq', { type: 'get', to: 'example.com', id: 't1' }, xml('time', { xmlns: NS.time })));
    const after = Date.now();
    expectXml(reply, `
      <iq type='result' id='t1' from='example.com' to='alice@example.com/phone'>
        <time xmlns='urn:xmpp:time'><tzo>*</tzo><utc>*</utc></time>
      </iq>`);
    const utc = reply.getChild('time')!.getChildText('utc')!;
    expect(utc).to.match(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    expect(Date.parse(utc)).to.be.within(before, after);
    expect(reply.getChild('time')!.getChildText('tzo')).to.match(/^[+-]\d{2}:\d{2}$/);
  });

  for (const [zone, offset] of [['UTC', '+00:00'], ['Asia/Kathmandu', '+05:45'], ['America/Caracas', '-04:00']] as const) {
    it(`answers the process time zone's offset (${zone} is ${offset})`, async () => {
      process.env.TZ = zone;
      const reply = await alice.get(xml('time', { xmlns: NS.time }));
      expect(reply.getChild('time')!.getChildText('tzo')).to.equal(offset);
    });
  }

  it('formats dates as XEP-0082 requires', () => {
    expect(utcDateTime(new Date(Date.UTC(2006, 11, 19, 17, 58, 35, 987)))).to.equal('2006-12-19T17:58:35Z');
    process.env.TZ = 'America/St_Johns';
    expect(timezoneOffset(new Date(Date.UTC(2024, 0, 15)))).to.equal('-03:30');
    expect(timezoneOffset(new Date(Date.UTC(2024, 6, 15)))).to.equal('-02:30');
  });

  it('shows urn:xmpp:time in the server\'s disco#info', async () => {
    const reply = await alice.get(xml('query', { xmlns: NS.discoInfo }));
    expect(reply.getChild('query')!.getChildren('feature').map((f) => f.attrs.var)).to.include(NS.time);
  });

  it('does not answer for an account\'s bare JID, nor a set', async () => {
    expectError(await alice.get(xml('time', { xmlns: NS.time }), 'bob@example.com'), 'service-unavailable');
    expectError(await alice.set(xml('time', { xmlns: NS.time })), 'service-unavailable');
  });

  it('refuses unknown options', async () => {
    let error: unknown;
    await Harness.start({ modules: [time], options: { time: { zone: 'UTC' } } }).catch((e: unknown) => { error = e; });
    expect(error).to.be.instanceOf(Error);
  });
});
