// XEP-0050 Ad-Hoc Commands on the server's JID: discovery of the commands a requester may run,
// and multi-stage execution with sessions. Other modules add commands through its API.
import { randomBytes } from 'node:crypto';
import { defineModule, NS, StanzaError, xml, z } from '../../lib/module-api.js';
import type { Element, Jid, SubmittedForm } from '../../lib/module-api.js';
import { readForm } from '../../lib/module-api.js';
import disco from '../disco/index.js';
import { ANY_NODE } from '../disco/api.js';

export type CommandAction = 'execute' | 'next' | 'prev' | 'complete' | 'cancel';

export interface CommandRequest {
  from: Jid;
  action: CommandAction;
  /** The form the requester submitted with this step, if any. */
  form: SubmittedForm | undefined;
  /** Which step of the command this is: 0 for the first request of a session. */
  stage: number;
}

export type CommandResult =
  /** Show a form and wait for the next step. */
  | { status: 'executing'; form: Element; actions?: ReadonlyArray<'next' | 'prev' | 'complete'> }
  /** Done: an optional note (XEP-0050 §6.2) and an optional result form. */
  | { status: 'completed'; note?: { type: 'info' | 'warn' | 'error'; text: string }; form?: Element };

export interface AdhocCommand {
  node: string;
  name: string;
  /** Whether this requester may see and run the command. */
  allowed(from: Jid): boolean;
  run(req: CommandRequest): Promise<CommandResult> | CommandResult;
}

export interface AdhocApi {
  add(command: AdhocCommand): () => void;
}

interface CommandSession {
  node: string;
  owner: string;
  stage: number;
  expires: number;
}

export default defineModule({
  name: 'adhoc',
  xeps: [{ xep: 50, version: '1.3.0', status: 'complete' }],
  features: { host: [NS.commands] },
  defaultEnabled: true,
  requires: [disco],
  config: z.strictObject({
    /** How long a multi-stage command waits for its next step. */
    sessionTimeoutSeconds: z.number().int().positive().default(600),
    /** Open command sessions per requester. */
    maxSessions: z.number().int().positive().default(10),
  }),
  setup(ctx): AdhocApi {
    const commands = new Map<string, AdhocCommand>();
    const sessions = new Map<string, CommandSession>();
    const discoApi = ctx.deps.get(disco);

    discoApi.addItemsProvider({ target: 'host', node: NS.commands }, (q) =>
      [...commands.values()]
        .filter((c) => q.from !== undefined && c.allowed(q.from))
        .map((c) => ({ jid: ctx.host, node: c.node, name: c.name })),
    );
    discoApi.addInfoProvider({ target: 'host', node: ANY_NODE }, (q) => {
      const c = q.node === undefined ? undefined : commands.get(q.node);
      if (!c || !q.from || !c.allowed(q.from)) return undefined;
      return { identities: [{ category: 'automation', type: 'command-node', name: c.name }], features: [NS.commands, NS.dataForms] };
    });

    ctx.setInterval(() => {
      const now = Date.now();
      for (const [id, s] of sessions) if (s.expires < now) sessions.delete(id);
    }, 60_000);

    ctx.iq.set({ ns: NS.commands, name: 'command', to: ['host'] }, async (iq) => {
      const el = iq.payload!;
      const node = String(el.attrs.node ?? '');
      const command = commands.get(node);
      // XEP-0050 §4.4: unknown node → item-not-found; not allowed → forbidden.
      if (!command) throw StanzaError.itemNotFound('no such command');
      if (!command.allowed(iq.from)) throw StanzaError.forbidden('you may not run this command');
      const action = (el.attrs.action ?? 'execute') as CommandAction;
      if (!['execute', 'next', 'prev', 'complete', 'cancel'].includes(action)) throw StanzaError.badRequest('unknown action');
      const owner = iq.from.toString();
      let sessionId = el.attrs.sessionid as string | undefined;
      let session: CommandSession | undefined;
      if (sessionId !== undefined) {
        session = sessions.get(sessionId);
        // §4.4: a session that is gone or belongs to someone else.
        if (!session || session.owner !== owner || session.node !== node) {
          throw new StanzaError('not-allowed', { appCondition: xml('bad-sessionid', { xmlns: NS.commands }) });
        }
      } else if (action !== 'execute') {
        throw new StanzaError('bad-request', { appCondition: xml('bad-sessionid', { xmlns: NS.commands }) });
      } else {
        const mine = [...sessions.values()].filter((s) => s.owner === owner).length;
        if (mine >= ctx.config.maxSessions) throw StanzaError.resourceConstraint('too many open command sessions');
        sessionId = randomBytes(9).toString('base64url');
        session = { node, owner, stage: 0, expires: 0 };
      }
      const reply = (status: string, ...children: Element[]) => xml('command', { xmlns: NS.commands, node, sessionid: sessionId, status }, ...children);
      if (action === 'cancel') {
        sessions.delete(sessionId);
        return reply('canceled');
      }
      const result = await command.run({ from: iq.from, action, form: readForm(el), stage: session.stage });
      if (result.status === 'completed') {
        sessions.delete(sessionId);
        return reply(
          'completed',
          ...(result.note ? [xml('note', { type: result.note.type }, result.note.text)] : []),
          ...(result.form ? [result.form] : []),
        );
      }
      session.stage += 1;
      session.expires = Date.now() + ctx.config.sessionTimeoutSeconds * 1000;
      sessions.set(sessionId, session);
      const actions = result.actions ?? ['complete'];
      return reply(
        'executing',
        xml('actions', { execute: actions[actions.length - 1] }, actions.map((a) => xml(a))),
        result.form,
      );
    });

    return {
      add(command) {
        if (commands.has(command.node)) throw new Error(`ad-hoc command ${command.node} is registered twice`);
        commands.set(command.node, command);
        discoApi.changed();
        return () => {
          commands.delete(command.node);
          discoApi.changed();
        };
      },
    };
  },
});
