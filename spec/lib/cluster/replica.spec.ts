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

describe('cluster: learning an account from a read of Redis', () => {
  it('adds sessions it had not heard of and updates older copies, and says whether anything changed', () => {
    const r = new RemoteSessions(new RecordingLink());
    r.upsert(entry('s1', 'alice@x/phone', 'b', 1, { available: false }));
    expect(r.learn('alice@x', [entry('s1', 'alice@x/phone', 'b', 2), entry('s2', 'alice@x/laptop', 'c', 1)])).to.equal(true);
    expect(r.get('alice@x', 'phone')!.available).to.equal(true);
    expect(r.get('alice@x', 'laptop')!.id).to.equal('s2');
    // The same read again, or an older one: nothing changes.
    expect(r.learn('alice@x', [entry('s1', 'alice@x/phone', 'b', 1), entry('s2', 'alice@x/laptop', 'c', 1)])).to.equal(false);
    expect(r.get('alice@x', 'phone')!.available).to.equal(true);
  });

  it('leaves a resource to the session holding it when the read found that one too (a conflict the events settle)', () => {
    const r = new RemoteSessions(new RecordingLink());
    r.upsert(entry('new', 'alice@x/r', 'c', 1));
    expect(r.learn('alice@x', [entry('old', 'alice@x/r', 'b', 5), entry('new', 'alice@x/r', 'c', 1)])).to.equal(false);
    expect(r.get('alice@x', 'r')!.id).to.equal('new');
    // One the read did not find is gone (its removal is on its way): the read's session replaces it.
    expect(r.learn('alice@x', [entry('newer', 'alice@x/r', 'b', 1)])).to.equal(true);
    expect(r.get('alice@x', 'r')!.id).to.equal('newer');
    expect(r.size).to.equal(1);
  });

  it('ignores entries of another account', () => {
    const r = new RemoteSessions(new RecordingLink());
    expect(r.learn('alice@x', [entry('s1', 'bob@x/r', 'b', 1)])).to.equal(false);
    expect(r.size).to.equal(0);
  });
});

describe('SessionDirectory with a cluster replica', () => {
  function withReplica(duringRefresh?: (remote: RemoteSessions) => void): { dir: SessionDirectory; remote: RemoteSessions; changes: string[]; redis: Map<string, SessionEntry[]> } {
    const dir = new SessionDirectory();
    const remote = new RemoteSessions(new RecordingLink());
    const changes: string[] = [];
    /** What a read of Redis finds per account. */
    const redis = new Map<string, SessionEntry[]>();
    dir.attachReplica({
      of: (bare) => remote.of(bare),
      get: (bare, res) => remote.get(bare, res),
      countOf: (bare) => remote.countOf(bare),
      all: (host) => remote.all(host),
      bound: (s) => changes.push(`bound ${s.jid.toString()} ${s.available}`),
      removed: (s) => changes.push(`removed ${s.jid.toString()}`),
      refresh: (bare) => {
        changes.push(`refresh ${bare}`);
        duringRefresh?.(remote);
        return Promise.resolve(remote.learn(bare, redis.get(bare) ?? []));
      },
    });
    return { dir, remote, changes, redis };
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

  it('rechecks a full JID or an account against Redis when the replica has not heard of it yet', async () => {
    const { dir, redis, changes } = withReplica();
    const phone = Jid.parse('dora@x/phone');
    expect(dir.get(phone)).to.equal(undefined);
    redis.set('dora@x', [entry('d1', 'dora@x/phone', 'b', 1)]);
    expect((await dir.recheck(phone))?.id).to.equal('d1');
    expect(dir.get(phone)?.id, 'kept in the replica').to.equal('d1');
    expect(await dir.recheck(Jid.parse('dora@x/tablet'))).to.equal(undefined);
    expect((await dir.recheckOf(Jid.parse('dora@x'))).map((s) => s.id)).to.deep.equal(['d1']);
    redis.set('dora@x', [entry('d1', 'dora@x/phone', 'b', 1), entry('d2', 'dora@x/tablet', 'c', 1)]);
    expect((await dir.recheckOf(Jid.parse('dora@x/anything'))).map((s) => s.id)).to.deep.equal(['d1', 'd2']);
    expect(dir.of(Jid.parse('dora@x')).map((s) => s.id)).to.deep.equal(['d1', 'd2']);
    // Not an account: nothing to read.
    expect(await dir.recheck(Jid.parse('x/res'))).to.equal(undefined);
    expect(changes.filter((c) => c.startsWith('refresh'))).to.deep.equal(['refresh dora@x', 'refresh dora@x', 'refresh dora@x', 'refresh dora@x']);
  });

  it('answers with what the replica learnt from its events while Redis was read, whatever the read found', async () => {
    const { dir } = withReplica((remote) => remote.upsert(entry('e1', 'erik@x/r', 'b', 2)));
    expect((await dir.recheck(Jid.parse('erik@x/r')))?.id).to.equal('e1');
    const { dir: dir2 } = withReplica((remote) => remote.upsert(entry('f1', 'fay@x/r', 'b', 2)));
    expect((await dir2.recheckOf(Jid.parse('fay@x'))).map((s) => s.id)).to.deep.equal(['f1']);
  });

  it('without a replica stays local only', () => {
    const dir = new SessionDirectory();
    const s = localSession('carl@x/r');
    dir.add(s);
    expect(s.observer).to.equal(undefined);
    expect(dir.of(Jid.parse('carl@x'))).to.deep.equal([s]);
    return Promise.all([dir.recheck(Jid.parse('carl@x/other')), dir.recheckOf(Jid.parse('carl@x'))]).then(([session, all]) => {
      expect(session).to.equal(undefined);
      expect(all).to.deep.equal([s]);
    });
  });
});
