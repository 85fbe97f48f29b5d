// The replica of other nodes' sessions, and how SessionDirectory merges it with local sessions.
import { expect } from 'chai';
import { Jid } from '../../../lib/jid/jid.js';
import { RemoteSessions } from '../../../lib/cluster/replica.js';
import type { RemoteLink, RemoteSession } from '../../../lib/cluster/remote-session.js';
import { entryOf, parseEntry, type SessionEntry } from '../../../lib/cluster/session-entry.js';
import { C2sSession } from '../../../lib/sessions/c2s-session.js';
import { SessionDirectory } from '../../../lib/sessions/directory.js';
import { xml, type Element } from '../../../lib/xml/element.js';

function entry(id: string, jid: string, node: string, v: number, more: Partial<SessionEntry> = {}): SessionEntry {
  return { id, jid, node, v, available: true, priority: 0, interested: false, hibernating: false, secure: true, state: {}, ...more };
}

class RecordingLink implements RemoteLink {
  readonly sent: Array<[string, string]> = [];
  readonly closed: string[] = [];
  send(s: RemoteSession, el: Element): void { this.sent.push([s.id, el.toString()]); }
  close(s: RemoteSession): void { this.closed.push(s.id); }
  otherHostOf(node: string): string | undefined { return node === 'b' ? 'b.example:5222' : undefined; }
}

function localSession(jid: string): C2sSession {
  return new C2sSession(Jid.parse(jid), { write: () => undefined, close: () => undefined, remoteAddress: '127.0.0.1', secure: true }, undefined);
}

describe('cluster: remote session replica', () => {
  it('keeps the newest version of each session and indexes it by account', () => {
    const link = new RecordingLink();
    const r = new RemoteSessions(link);
    r.upsert(entry('s1', 'alice@x/phone', 'b', 2, { priority: 5 }));
    r.upsert(entry('s1', 'alice@x/phone', 'b', 1, { priority: 1 })); // older: ignored
    expect(r.of('alice@x').map((s) => s.priority)).to.deep.equal([5]);
    r.upsert(entry('s1', 'alice@x/phone', 'b', 3, { priority: 7, available: false }));
    const s = r.get('alice@x', 'phone')!;
    expect(s.priority).to.equal(7);
    expect(s.available).to.equal(false);
    expect(s.seeOtherHost).to.equal('b.example:5222');
    s.send(xml('message', { to: 'alice@x/phone' }));
    expect(link.sent).to.deep.equal([['s1', '<message to="alice@x/phone"/>']]);
  });

  it('forgets a whole node at once', () => {
    const r = new RemoteSessions(new RecordingLink());
    r.upsert(entry('s1', 'alice@x/a', 'b', 1));
    r.upsert(entry('s2', 'bob@x/a', 'b', 1));
    r.upsert(entry('s3', 'bob@x/c', 'c', 1));
    expect(r.removeNode('b').map((s) => s.id).sort()).to.deep.equal(['s1', 's2']);
    expect(r.of('alice@x')).to.deep.equal([]);
    expect(r.of('bob@x').map((s) => s.id)).to.deep.equal(['s3']);
    expect(r.size).to.equal(1);
  });

  it('replaces a resource bound again on another node, and a late removal of the old one leaves the new', () => {
    const r = new RemoteSessions(new RecordingLink());
    r.upsert(entry('old', 'alice@x/r', 'b', 1));
    r.upsert(entry('new', 'alice@x/r', 'c', 1));
    r.remove('old');
    expect(r.get('alice@x', 'r')?.id).to.equal('new');
  });

  it('shares JSON-friendly module state and presence, and nothing else', () => {
    const s = localSession('alice@x/r');
    s.set({ name: 'carbons.enabled', initial: () => false }, true);
    s.set({ name: 'presence.directed', initial: () => [] as string[] }, ['room@conf.x/nick']);
    s.set({ name: 'sm.sm', initial: () => undefined as object | undefined }, { queue: new Map() });
    s.setPresence(xml('presence', { from: 'alice@x/r' }, xml('priority', {}, '3')));
    const e = parseEntry(JSON.stringify(entryOf(s, 'a', 9)))!;
    expect(e.state).to.deep.equal({ 'carbons.enabled': true, 'presence.directed': ['room@conf.x/nick'] });
    expect(e.priority).to.equal(3);
    const remote = new RemoteSessions(new RecordingLink());
    remote.upsert(e);
    const seen = remote.get('alice@x', 'r')!;
    expect(seen.get({ name: 'carbons.enabled', initial: () => false })).to.equal(true);
    expect(seen.get({ name: 'sm.sm', initial: () => 'initial' })).to.equal('initial');
    expect(seen.presence?.getChildText('priority')).to.equal('3');
  });
});

describe('SessionDirectory with a cluster replica', () => {
  function withReplica(): { dir: SessionDirectory; remote: RemoteSessions; changes: string[] } {
    const dir = new SessionDirectory();
    const remote = new RemoteSessions(new RecordingLink());
    const changes: string[] = [];
    dir.attachReplica({
      of: (bare) => remote.of(bare),
      get: (bare, res) => remote.get(bare, res),
      countOf: (bare) => remote.countOf(bare),
      all: (host) => remote.all(host),
      bound: (s) => changes.push(`bound ${s.jid.toString()} ${s.available}`),
      removed: (s) => changes.push(`removed ${s.jid.toString()}`),
    });
    return { dir, remote, changes };
  }

  it('answers for local and remote sessions, local first and winning on the same resource', () => {
    const { dir, remote } = withReplica();
    const mine = localSession('alice@x/phone');
    dir.add(mine);
    remote.upsert(entry('r1', 'alice@x/laptop', 'b', 1));
    remote.upsert(entry('r2', 'alice@x/phone', 'b', 1));
    expect(dir.of(Jid.parse('alice@x')).map((s) => s.id)).to.deep.equal([mine.id, 'r1']);
    expect(dir.get(Jid.parse('alice@x/phone'))).to.equal(mine);
    expect(dir.get(Jid.parse('alice@x/laptop'))?.id).to.equal('r1');
    expect(dir.local(Jid.parse('alice@x/laptop'))).to.equal(undefined);
    expect(dir.localOf(Jid.parse('alice@x'))).to.deep.equal([mine]);
    expect(dir.all()).to.deep.equal([mine]);
    expect(dir.size).to.equal(1);
  });

  it('tells the replica when a local session is bound, changes and goes', () => {
    const { dir, changes } = withReplica();
    const s = localSession('bob@x/r');
    dir.add(s);
    s.setPresence(xml('presence'));
    dir.remove(s);
    s.setPresence(undefined); // after removal: no longer reported
    expect(changes).to.deep.equal(['bound bob@x/r false', 'bound bob@x/r true', 'removed bob@x/r']);
  });

  it('without a replica stays local only', () => {
    const dir = new SessionDirectory();
    const s = localSession('carl@x/r');
    dir.add(s);
    expect(s.observer).to.equal(undefined);
    expect(dir.of(Jid.parse('carl@x'))).to.deep.equal([s]);
  });
});
