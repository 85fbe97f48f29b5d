// XEP-0198 §4 sequence arithmetic: 'h' is an unsignedInt that wraps from 2^32-1 to 0.
import { expect } from 'chai';
import { ackedSince, addH, H_MODULUS, parseH, UnackedQueue } from '../../../modules/sm/queue.js';

const MAX = H_MODULUS - 1;

describe('sm: sequence numbers (XEP-0198 §4)', () => {
  it('wraps h from 2^32-1 back to zero, not to 2^32', () => {
    expect(addH(MAX, 1)).to.equal(0);
    expect(addH(MAX - 1, 3)).to.equal(1);
    expect(addH(5, 1)).to.equal(6);
  });

  it('counts the stanzas an ack covers across the wrap', () => {
    expect(ackedSince(MAX - 1, 2)).to.equal(4);
    expect(ackedSince(10, 10)).to.equal(0);
    expect(ackedSince(10, 13)).to.equal(3);
  });

  it('reads h as a decimal unsignedInt and nothing else', () => {
    expect(parseH('0')).to.equal(0);
    expect(parseH(String(MAX))).to.equal(MAX);
    for (const bad of [String(H_MODULUS), '-1', '1.5', '', ' 1', '0x10', 'abc', '12345678901', undefined, 7]) {
      expect(parseH(bad), String(bad)).to.equal(undefined);
    }
  });
});

describe('sm: the unacknowledged queue', () => {
  it('drops what an ack covers and keeps the rest in order', () => {
    const q = new UnackedQueue<string>();
    for (const s of ['a', 'b', 'c', 'd']) q.push(s);
    expect(q.sent).to.equal(4);
    expect(q.ack(2)).to.deep.equal({ ok: true, acknowledged: 2 });
    expect(q.pending()).to.deep.equal(['c', 'd']);
    expect(q.ack(2)).to.deep.equal({ ok: true, acknowledged: 0 });
    expect(q.ack(4)).to.deep.equal({ ok: true, acknowledged: 2 });
    expect(q.length).to.equal(0);
    expect(q.sent).to.equal(4);
  });

  it('refuses an ack of more than was sent and changes nothing', () => {
    const q = new UnackedQueue<string>();
    q.push('a');
    q.push('b');
    expect(q.ack(3)).to.deep.equal({ ok: false, sent: 2 });
    expect(q.pending()).to.deep.equal(['a', 'b']);
    expect(q.acked).to.equal(0);
  });

  it('acknowledges across the wrap-around of h', () => {
    const q = new UnackedQueue<string>();
    q.acked = MAX - 1;
    for (const s of ['a', 'b', 'c', 'd', 'e']) q.push(s);
    expect(q.sent).to.equal(3); // MAX-1 + 5, modulo 2^32
    expect(q.ack(MAX)).to.deep.equal({ ok: true, acknowledged: 1 });
    expect(q.ack(1)).to.deep.equal({ ok: true, acknowledged: 2 });
    expect(q.pending()).to.deep.equal(['d', 'e']);
    expect(q.ack(4)).to.deep.equal({ ok: false, sent: 3 });
    expect(q.ack(3)).to.deep.equal({ ok: true, acknowledged: 2 });
  });

  it('stays correct through many acks (compaction)', () => {
    const q = new UnackedQueue<number>();
    let next = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 100; i++) q.push(next++);
      expect(q.ack(addH(q.acked, 97)).ok).to.equal(true);
    }
    expect(q.length).to.equal(150);
    expect(q.pending()[0]).to.equal(next - 150);
    expect(q.drain()).to.have.length(150);
    expect(q.length).to.equal(0);
    expect(q.sent).to.equal(next);
  });
});
