// Per-session rate limits over real sockets: a client flooding the server is slowed down (its
// socket is read more slowly, nothing is dropped and it stays connected) while another user's
// traffic on the same server keeps its normal latency.
import { expect } from 'chai';
import { loggedIn, sleep, type RawClient } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const RATE = 100;
const FLOOD = 500;

describe('e2e: flood shaping', function () {
  this.timeout(60_000);
  let srv: TestServer;
  const clients: RawClient[] = [];
  before(async () => {
    srv = await startTestServer({ limits: { stanzasPerSecond: RATE } });
    for (const u of ['flooder', 'sink', 'alice', 'bob']) await srv.addUser(u, 'secret-pw');
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await srv.stop();
  });

  it(`shapes a client sending ${FLOOD} messages at once to ~${RATE}/s while another pair chats with normal latency`, async () => {
    const login = async (u: string) => {
      const c = await loggedIn(srv, u, { password: 'secret-pw' });
      clients.push(c);
      c.send("<presence/>");
      return c;
    };
    const [flooder, sink, alice, bob] = [await login('flooder'), await login('sink'), await login('alice'), await login('bob')];
    await sleep(100);
    const countAt = (c: RawClient, pred: (id: string) => boolean) => c.elements.filter((e) => e.name === 'message' && pred(String(e.attrs.id ?? ''))).length;

    // Baseline round trip alice → bob before the flood.
    const roundTrip = async (i: number): Promise<number> => {
      const id = `chat-${i}`;
      const t0 = performance.now();
      alice.send(`<message to='bob@localhost/${bob.jid!.split('/')[1]}' id='${id}' type='chat'><body>hi ${i}</body></message>`);
      await bob.waitForElement((e) => e.name === 'message' && e.attrs.id === id, 10_000);
      return performance.now() - t0;
    };
    const baseline: number[] = [];
    for (let i = 0; i < 10; i++) baseline.push(await roundTrip(i));

    const started = performance.now();
    let burst = '';
    for (let i = 0; i < FLOOD; i++) burst += `<message to='sink@localhost' id='f-${i}' type='chat'><body>flood ${i} ${'x'.repeat(40)}</body></message>`;
    flooder.send(burst);

    // While the flood is being shaped, alice and bob keep chatting.
    const during: number[] = [];
    await sleep(200);
    for (let i = 10; i < 40; i++) {
      during.push(await roundTrip(i));
      await sleep(30);
    }
    const midwayDelivered = countAt(sink, (id) => id.startsWith('f-'));

    await sink.waitForElement(() => countAt(sink, (id) => id.startsWith('f-')) >= FLOOD, 30_000);
    const elapsed = (performance.now() - started) / 1000;
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(`      flood: ${FLOOD} messages in ${elapsed.toFixed(2)} s (${(FLOOD / elapsed).toFixed(0)}/s, limit ${RATE}/s, burst ${RATE * 2}); `
      + `alice→bob median ${median(baseline).toFixed(1)} ms before, ${median(during).toFixed(1)} ms during (max ${Math.max(...during).toFixed(1)} ms)`);

    // Shaped: the burst allowance goes at once, the rest at the configured rate.
    expect(elapsed).to.be.greaterThan(((FLOOD - 2 * RATE) / RATE) * 0.8);
    expect(midwayDelivered).to.be.lessThan(FLOOD);
    // Nothing dropped, no disconnection, no error bounced to the flooder.
    expect(countAt(sink, (id) => id.startsWith('f-'))).to.equal(FLOOD);
    expect(flooder.isClosed).to.equal(false);
    expect(flooder.elements.filter((e) => e.attrs.type === 'error')).to.deep.equal([]);
    // The other users never waited on the flood.
    expect(median(during)).to.be.lessThan(Math.max(50, median(baseline) * 5));
  });
});
