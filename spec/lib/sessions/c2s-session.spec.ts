// The per-session outbound queue (ARCHITECTURE §8): filters, write taps, hibernation and moving
// between streams.
import { expect } from 'chai';
import { C2sSession, type SessionSink } from '../../../lib/sessions/c2s-session.js';
import type { SessionTap } from '../../../lib/sessions/types.js';
import { Jid } from '../../../lib/jid/jid.js';
import { xml, type Element } from '../../../lib/xml/element.js';

const JID = Jid.parse('alice@example.com/phone');
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

function recordingSink(name: string, log: string[]): SessionSink & { written: Element[] } {
  const written: Element[] = [];
  return {
    written,
    write: (el) => {
      written.push(el);
      log.push(`${name}:write:${el.attrs.id}`);
    },
    close: (condition) => log.push(`${name}:close:${condition ?? ''}`),
    release: () => log.push(`${name}:release`),
    remoteAddress: `${name}-addr`,
    secure: true,
  };
}

const msg = (id: string) => xml('message', { id });

describe('sessions: the outbound queue', () => {
  it('shows every written stanza to the write taps, after the sink, in wire order, and not what a filter drops', async () => {
    const log: string[] = [];
    const tap: SessionTap = (_s, el) => log.push(`tap:${el.attrs.id}`);
    const session = new C2sSession(JID, recordingSink('a', log), async (_s, el) => el.attrs.id !== 'dropped', { writeTaps: [tap] });
    session.send(msg('1'));
    session.send(msg('dropped'));
    session.send(msg('2'));
    await tick();
    expect(log).to.deep.equal(['a:write:1', 'tap:1', 'a:write:2', 'tap:2']);
  });

  it('writes directly (and taps) when there are no outgoing filters', () => {
    const log: string[] = [];
    const session = new C2sSession(JID, recordingSink('a', log), undefined, { writeTaps: [(_s, el) => log.push(`tap:${el.attrs.id}`)] });
    session.send(msg('1'));
    session.sendFirst([msg('2'), msg('3')]);
    expect(log).to.deep.equal(['a:write:1', 'tap:1', 'a:write:2', 'tap:2', 'a:write:3', 'tap:3']);
  });

  it('puts sendFirst stanzas ahead of those not yet written, in their order, through the filters again', async () => {
    const log: string[] = [];
    const filtered: string[] = [];
    let session!: C2sSession;
    let released = false;
    session = new C2sSession(JID, recordingSink('a', log), async (_s, el) => {
      filtered.push(el.attrs.id as string);
      if (el.attrs.id === 'now' && !released) {
        // While 'now' is being filtered, 'later' waits in the queue: the held ones go before it.
        released = true;
        session.sendFirst([msg('held1'), msg('held2'), el]);
        return false;
      }
      return true;
    });
    session.send(msg('now'));
    session.send(msg('later'));
    for (let i = 0; i < 5; i++) await tick();
    expect(log).to.deep.equal(['a:write:held1', 'a:write:held2', 'a:write:now', 'a:write:later']);
    expect(filtered).to.deep.equal(['now', 'held1', 'held2', 'now', 'later']);
  });

  it('hibernates: a detached session writes to its stand-in only, and the taps still see everything', () => {
    const log: string[] = [];
    const seen: string[] = [];
    const session = new C2sSession(JID, recordingSink('a', log), undefined, { writeTaps: [(_s, el) => seen.push(el.attrs.id as string)] });
    const standIn = recordingSink('standin', log);
    session.detach(standIn);
    expect(session.hibernating).to.equal(true);
    expect(session.remoteAddress).to.equal('standin-addr');
    session.send(msg('1'));
    session.close('connection-timeout');
    expect(log).to.deep.equal(['standin:write:1', 'standin:close:connection-timeout']);
    expect(seen).to.deep.equal(['1']);
  });

  it('moves to a new stream: the stream holding it is told to let go, and the session wakes', () => {
    const log: string[] = [];
    const session = new C2sSession(JID, recordingSink('old', log), undefined);
    session.attach(recordingSink('new', log));
    session.send(msg('1'));
    expect(log).to.deep.equal(['old:release', 'new:write:1']);
    expect(session.hibernating).to.equal(false);
    expect(session.remoteAddress).to.equal('new-addr');
  });

  it('ends once: markEnded is true the first time only', () => {
    const session = new C2sSession(JID, recordingSink('a', []), undefined);
    expect(session.isEnded).to.equal(false);
    expect(session.markEnded()).to.equal(true);
    expect(session.markEnded()).to.equal(false);
    expect(session.isEnded).to.equal(true);
  });
});
