// Multi-user chat against real clients: slixmpp 1.8 (its XEP-0045, XEP-0313 and XEP-0425 plugins)
// and nbxmpp 4.2 (the library under Gajim: its MUC, MAM and Moderation modules), each an
// interactive child process (spec/e2e/clients/slixmpp_muc.py, nbxmpp_muc.py) reporting JSON lines.
// The server runs on ephemeral ports with a real TLS certificate and an SQLite file, and is
// restarted on the same file to show that a persistent room survives.
//
// Both libraries speak XEP-0425 0.x (urn:xmpp:message-moderate:0 over XEP-0422 fastening), which
// the room understands and announces next to the 1.x form.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { parseConfig } from '../../lib/config/load.js';
import { MODULE_CATALOG } from '../../lib/modules/catalog.js';
import { startServer, type RunningServer } from '../../lib/server.js';
import { silentLogger } from '../../lib/log.js';
import { INSTALL_HINT, pythonHas, SYSTEM_PYTHON } from './clients/python-client.js';
import { MucDriver, NBXMPP_MUC, SLIXMPP_MUC, type DriverEvent } from './clients/muc-driver.js';

const DOMAIN = 'localhost';
const ROOM = `coven@conference.${DOMAIN}`;

interface Server {
  server: RunningServer;
  port: number;
}

/** A server on `dir` (kept across restarts): the SQLite file and the certificate live there. */
async function startIn(dir: string): Promise<Server> {
  const config = parseConfig(
    {
      hosts: [DOMAIN],
      listeners: [{ type: 'c2s', port: 0, address: '127.0.0.1' }],
      tls: { certificates: 'certs', generate: true },
      storage: { driver: 'sqlite', path: 'parley.db' },
      auth: { scramIterations: 4096 },
      modules: { muc: { messageRate: { perSecond: 100, burst: 100 } } },
    },
    MODULE_CATALOG,
    dir,
  );
  const server = await startServer(config, { log: silentLogger() });
  const port = server.addresses.find((a) => a.type === 'c2s')!.port;
  return { server, port };
}

const codes = (e: DriverEvent) => (e.codes as number[] | undefined) ?? [];

describe('e2e: multi-user chat with slixmpp and nbxmpp', function () {
  this.timeout(60_000);
  let dir: string;
  let srv: Server | undefined;
  const running: MucDriver[] = [];
  let hasSlixmpp = false;
  let hasNbxmpp = false;

  before(function () {
    hasSlixmpp = pythonHas('slixmpp');
    hasNbxmpp = pythonHas('gi', 'nbxmpp');
    if (!hasSlixmpp && !hasNbxmpp) {
      console.log(`    (skipped: neither slixmpp nor nbxmpp is importable by ${SYSTEM_PYTHON}; ${INSTALL_HINT})`);
      this.skip();
    }
  });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'parley-e2e-muc-'));
    srv = await startIn(dir);
    for (const user of ['alice', 'bob', 'carol', 'dave']) await srv.server.accounts.create(DOMAIN, user, 'secret-pw');
  });

  afterEach(async () => {
    await Promise.all(running.splice(0).map((c) => c.kill()));
    await srv?.server.stop();
    srv = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  async function client(script: string, user: string, resource: string): Promise<MucDriver> {
    const c = new MucDriver({ script, host: '127.0.0.1', port: srv!.port, jid: `${user}@${DOMAIN}`, password: 'secret-pw', resource });
    running.push(c);
    await c.bound();
    return c;
  }

  function requires(lib: 'slixmpp' | 'nbxmpp', ctx: Mocha.Context): void {
    const ok = lib === 'slixmpp' ? hasSlixmpp : hasNbxmpp;
    if (!ok) {
      console.log(`    (skipped: ${lib} is not importable by ${SYSTEM_PYTHON}; ${INSTALL_HINT})`);
      ctx.skip();
    }
  }

  for (const [lib, script] of [['slixmpp', SLIXMPP_MUC], ['nbxmpp', NBXMPP_MUC]] as const) {
    describe(lib, () => {
      it('creates and configures a room, joins with history, hits a nick conflict, exchanges private messages', async function () {
        requires(lib, this);
        const alice = await client(script, 'alice', `${lib}-a`);
        const created = await alice.cmd({ cmd: 'join', room: ROOM, nick: 'crone' });
        expect(created.type, JSON.stringify(created)).to.equal('joined');
        expect(created.codes).to.include.members([110, 201]);
        expect(created.item).to.include({ affiliation: 'owner', role: 'moderator' });
        const configured = await alice.cmd({
          cmd: 'configure',
          room: ROOM,
          fields: { 'muc#roomconfig_roomname': 'A Dark Cave', 'muc#roomconfig_persistentroom': '1', 'muc#roomconfig_whois': 'anyone' },
        });
        expect(configured.type, JSON.stringify(configured)).to.equal('result');
        for (const body of ['one', 'two', 'three']) {
          const said = await alice.cmd({ cmd: 'say', room: ROOM, body });
          expect(said.stanza_id, JSON.stringify(said)).to.be.a('string');
          expect(said.from).to.equal(`${ROOM}/crone`);
        }

        const bob = await client(script, 'bob', `${lib}-b`);
        const joined = await bob.cmd({ cmd: 'join', room: ROOM, nick: 'hecate', maxstanzas: 2 });
        expect(joined.type, JSON.stringify(joined)).to.equal('joined');
        expect(joined.codes).to.include.members([100, 110, 170]);
        // COMPAT(slixmpp 1.8.3): its join result counts its own nick among the occupants.
        expect(joined.occupants).to.include('crone').and.not.include('third');
        expect((joined.history as Array<{ body: string }>).map((h) => h.body)).to.deep.equal(['two', 'three']);
        expect((joined.history as Array<{ stanza_id: string }>)[0].stanza_id).to.be.a('string');

        const carol = await client(script, 'carol', `${lib}-c`);
        const conflict = await carol.cmd({ cmd: 'join', room: ROOM, nick: 'crone' });
        expect(conflict.type).to.equal('error');
        expect((conflict.error as { condition: string }).condition).to.equal('conflict');

        const mark = alice.mark();
        await bob.cmd({ cmd: 'pm', room: ROOM, nick: 'crone', body: 'psst' });
        const pm = await alice.waitFor((e) => e.event === 'message' && e.body === 'psst', { after: mark });
        expect(pm).to.include({ type: 'chat', from: `${ROOM}/hecate` });
        expect(pm.raw).to.include('http://jabber.org/protocol/muc#user');
      });

      it('kicks and bans', async function () {
        requires(lib, this);
        const alice = await client(script, 'alice', `${lib}-a`);
        await alice.cmd({ cmd: 'join', room: ROOM, nick: 'crone' });
        await alice.cmd({ cmd: 'configure', room: ROOM, fields: {} });
        const dave = await client(script, 'dave', `${lib}-d`);
        expect((await dave.cmd({ cmd: 'join', room: ROOM, nick: 'pistol' })).type).to.equal('joined');
        let mark = dave.mark();
        const kick = await alice.cmd({ cmd: 'kick', room: ROOM, nick: 'pistol', reason: 'Avaunt, you cullion!' });
        expect(kick.type, JSON.stringify(kick)).to.equal('result');
        const kicked = await dave.waitFor((e) => e.event === 'presence' && e.type === 'unavailable', { after: mark });
        expect(codes(kicked)).to.deep.equal([110, 307]);
        expect(kicked.raw).to.include('Avaunt, you cullion!');

        expect((await dave.cmd({ cmd: 'join', room: ROOM, nick: 'pistol' })).type).to.equal('joined');
        mark = dave.mark();
        const ban = await alice.cmd({ cmd: 'affiliation', room: ROOM, jid: `dave@${DOMAIN}`, affiliation: 'outcast', reason: 'Treason' });
        expect(ban.type, JSON.stringify(ban)).to.equal('result');
        const banned = await dave.waitFor((e) => e.event === 'presence' && e.type === 'unavailable', { after: mark });
        expect(codes(banned)).to.deep.equal([110, 301]);
        const refused = await dave.cmd({ cmd: 'join', room: ROOM, nick: 'pistol' });
        expect((refused.error as { condition: string }).condition).to.equal('forbidden');
      });

      it('pages through the room archive and sees a moderator retract a message', async function () {
        requires(lib, this);
        const alice = await client(script, 'alice', `${lib}-a`);
        await alice.cmd({ cmd: 'join', room: ROOM, nick: 'crone' });
        await alice.cmd({ cmd: 'configure', room: ROOM, fields: {} });
        const bob = await client(script, 'bob', `${lib}-b`);
        await bob.cmd({ cmd: 'join', room: ROOM, nick: 'hecate' });
        const ids: string[] = [];
        for (let i = 1; i <= 5; i++) ids.push(String((await alice.cmd({ cmd: 'say', room: ROOM, body: `m${i}` })).stanza_id));

        const first = await bob.cmd({ cmd: 'mam', room: ROOM, max: 2 });
        expect(first.type, JSON.stringify(first)).to.equal('result');
        expect(first.bodies).to.deep.equal(['m1', 'm2']);
        expect(first.ids).to.deep.equal(ids.slice(0, 2));
        expect(first.complete).to.equal(false);
        // A page of a larger set carries no count: that would be a scan (XEP-0059 §2.1; modules/mam/paging.ts).
        expect(first.count).to.equal(null);
        const second = await bob.cmd({ cmd: 'mam', room: ROOM, max: 2, after: first.last });
        expect(second.bodies).to.deep.equal(['m3', 'm4']);
        const third = await bob.cmd({ cmd: 'mam', room: ROOM, max: 2, after: second.last });
        expect(third.bodies).to.deep.equal(['m5']);
        expect(third.complete).to.equal(true);
        expect(third.froms).to.deep.equal([`${ROOM}/crone`]);

        const spam = await bob.cmd({ cmd: 'say', room: ROOM, body: 'DM me for free magic potions!' });
        const mark = bob.mark();
        const moderated = await alice.cmd({ cmd: 'moderate', room: ROOM, id: spam.stanza_id, reason: 'spam' });
        expect(moderated.type, JSON.stringify(moderated)).to.equal('result');
        // The library itself recognises the room's announcement as a moderation of that message.
        const seen = await bob.waitFor((e) => e.event === 'moderated', { after: mark });
        expect(seen.id).to.equal(spam.stanza_id);
        expect(seen.by).to.equal(`${ROOM}/crone`);
        const after = await bob.cmd({ cmd: 'mam', room: ROOM, max: 10, after: third.last });
        expect(after.ids).to.include(spam.stanza_id);
        expect((after.bodies as Array<string | null>)[0]).to.equal(null);
      });

      it('finds a persistent room intact after a restart of the server', async function () {
        requires(lib, this);
        const alice = await client(script, 'alice', `${lib}-a`);
        await alice.cmd({ cmd: 'join', room: ROOM, nick: 'crone' });
        await alice.cmd({ cmd: 'configure', room: ROOM, fields: { 'muc#roomconfig_persistentroom': '1', 'muc#roomconfig_membersonly': '1' } });
        await alice.cmd({ cmd: 'affiliation', room: ROOM, jid: `bob@${DOMAIN}`, affiliation: 'member' });
        await alice.cmd({ cmd: 'say', room: ROOM, body: 'before the restart' });
        await alice.disconnect();
        await srv!.server.stop();

        srv = await startIn(dir);
        const bob = await client(script, 'bob', `${lib}-b`);
        const joined = await bob.cmd({ cmd: 'join', room: ROOM, nick: 'hecate' });
        expect(joined.type, JSON.stringify(joined)).to.equal('joined');
        expect(joined.codes).to.not.include(201);
        expect(joined.item).to.include({ affiliation: 'member' });
        expect((joined.history as Array<{ body: string }>).map((h) => h.body)).to.deep.equal(['before the restart']);
        const carol = await client(script, 'carol', `${lib}-c`);
        const refused = await carol.cmd({ cmd: 'join', room: ROOM, nick: 'third' });
        expect((refused.error as { condition: string }).condition).to.equal('registration-required');
        const archive = await bob.cmd({ cmd: 'mam', room: ROOM, max: 10 });
        expect(archive.bodies).to.deep.equal(['before the restart']);
      });
    });
  }

  it('slixmpp: a subject change is in the room archive under the stanza-id it carried live', async function () {
    requires('slixmpp', this);
    const alice = await client(SLIXMPP_MUC, 'alice', 'sli-a');
    await alice.cmd({ cmd: 'join', room: ROOM, nick: 'crone' });
    await alice.cmd({ cmd: 'configure', room: ROOM, fields: {} });
    const bob = await client(SLIXMPP_MUC, 'bob', 'sli-b');
    await bob.cmd({ cmd: 'join', room: ROOM, nick: 'hecate' });
    await alice.cmd({ cmd: 'say', room: ROOM, body: 'before' });
    const changed = await alice.cmd({ cmd: 'subject', room: ROOM, subject: 'Fire burn' });
    expect(changed.type, JSON.stringify(changed)).to.equal('result');
    expect(changed.stanza_id, JSON.stringify(changed)).to.be.a('string');
    await alice.cmd({ cmd: 'say', room: ROOM, body: 'after' });
    const page = await bob.cmd({ cmd: 'mam', room: ROOM, max: 10 });
    expect(page.bodies).to.deep.equal(['before', null, 'after']);
    expect(page.subjects).to.deep.equal([null, 'Fire burn', null]);
    expect((page.ids as string[])[1]).to.equal(changed.stanza_id);
    expect((page.froms as string[])[1]).to.equal(`${ROOM}/crone`);
    // A newcomer gets the discussion as history and the subject once, after it.
    const carol = await client(SLIXMPP_MUC, 'carol', 'sli-c');
    const joined = await carol.cmd({ cmd: 'join', room: ROOM, nick: 'third' });
    expect((joined.history as Array<{ body: string }>).map((m) => m.body)).to.deep.equal(['before', 'after']);
    expect(joined.subject).to.equal('Fire burn');
  });

  it('puts slixmpp and nbxmpp in one room: each sees the other’s messages and presence', async function () {
    requires('slixmpp', this);
    requires('nbxmpp', this);
    const sli = await client(SLIXMPP_MUC, 'alice', 'sli');
    await sli.cmd({ cmd: 'join', room: ROOM, nick: 'crone' });
    await sli.cmd({ cmd: 'configure', room: ROOM, fields: {} });
    const nb = await client(NBXMPP_MUC, 'bob', 'nb');
    const joined = await nb.cmd({ cmd: 'join', room: ROOM, nick: 'hecate' });
    expect(joined.occupants).to.deep.equal(['crone']);
    const mark = sli.mark();
    const said = await nb.cmd({ cmd: 'say', room: ROOM, body: 'hello from Gajim’s library' });
    const got = await sli.waitFor((e) => e.event === 'message' && e.body === 'hello from Gajim’s library', { after: mark });
    expect(got.stanza_id).to.equal(said.stanza_id);
    expect(got.occupant_id).to.be.a('string');
    const left = await nb.cmd({ cmd: 'leave', room: ROOM, nick: 'hecate' });
    expect(left.codes).to.deep.equal([110]);
    await sli.waitFor((e) => e.event === 'presence' && e.from === `${ROOM}/hecate` && e.type === 'unavailable', { after: mark });
  });
});
