// The OpenAPI 3.1 description of the HTTP admin API, served at /admin/api/openapi.json. Kept next
// to the routes (http-api.ts); spec/lib/admin/http-api.spec.ts checks that every route is here.
import { TOKEN_SCOPES } from './tokens.js';

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Schema) => ({ 'application/json': { schema } });
const ok = (description: string, schema: Schema) => ({ description, content: json(schema) });
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [String(c), { $ref: `#/components/responses/E${c}` }]));
const jidParam = (description: string) => ({ name: 'jid', in: 'path', required: true, description, schema: { type: 'string' } });
const reportHost = { name: 'host', in: 'path', required: true, description: 'The virtual host the report was filed on.', schema: { type: 'string' } };
const reportId = { name: 'id', in: 'path', required: true, description: 'The report id from the list (percent-encode its slash).', schema: { type: 'string' } };
const hostParam = { name: 'host', in: 'query', required: false, description: 'Only this virtual host.', schema: { type: 'string' } };

function op(summary: string, scope: string, extra: Schema, responses: Schema): Schema {
  return {
    summary,
    description: `Token scope: \`${scope}\` (a web admin session has every scope; its POST and DELETE requests need the X-CSRF-Token header).`,
    security: [{ bearer: [scope] }, { session: [] }],
    ...extra,
    responses: { ...responses, ...errors(401, 403) },
  };
}

export function openApiDocument(): Schema {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Parley admin API',
      version: '1',
      description:
        'Administration of a running Parley server. Authenticate with `Authorization: Bearer <token>` (create one with `parley admin token create NAME --scope ...`). ' +
        `Scopes: ${TOKEN_SCOPES.join(', ')}. Errors are JSON objects with \`error\` (a stable code) and \`message\`.`,
    },
    servers: [{ url: '/admin/api' }],
    paths: {
      '/users': {
        get: op('List accounts, a page at a time', 'users:read', {
          parameters: [
            hostParam,
            { name: 'after', in: 'query', required: false, description: 'The `next` cursor of the previous page.', schema: { type: 'string' } },
            { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 500, default: 100 } },
          ],
        }, { 200: ok('A page of accounts', ref('UserPage')), ...errors(400, 404) }),
        post: op('Create an account', 'users:write', {
          requestBody: { required: true, content: json({ type: 'object', required: ['jid', 'password'], properties: { jid: { type: 'string' }, password: { type: 'string' } }, additionalProperties: false }) },
        }, { 201: ok('Created', ref('JidResult')), ...errors(400, 404, 409, 415) }),
      },
      '/users/{jid}': {
        delete: op('Delete an account and its data; its sessions end', 'users:write', { parameters: [jidParam('The account, user@domain.')] }, { 200: ok('Deleted', ref('JidResult')), ...errors(400, 404) }),
      },
      '/users/{jid}/disable': {
        post: op('Disable an account (it keeps its data, cannot log in; its sessions end)', 'users:write', { parameters: [jidParam('The account.')] }, { 200: ok('Disabled', ref('JidResult')), ...errors(400, 404) }),
      },
      '/users/{jid}/enable': {
        post: op('Re-enable a disabled account', 'users:write', { parameters: [jidParam('The account.')] }, { 200: ok('Enabled', ref('JidResult')), ...errors(400, 404) }),
      },
      '/users/{jid}/password': {
        post: op('Set a new password', 'users:write', {
          parameters: [jidParam('The account.')],
          requestBody: { required: true, content: json({ type: 'object', required: ['password'], properties: { password: { type: 'string' } }, additionalProperties: false }) },
        }, { 200: ok('Changed', ref('JidResult')), ...errors(400, 404, 415) }),
      },
      '/users/{jid}/second-factor': {
        delete: op('Turn off the account\'s TOTP second factor and recovery codes (a lost device); recorded in its security events', 'users:write', { parameters: [jidParam('The account.')] }, {
          200: ok('Turned off', { type: 'object', required: ['jid'], properties: { jid: { type: 'string' }, twoFactor: { type: 'boolean', const: false } } }),
          ...errors(400, 404),
        }),
      },
      '/sessions': {
        get: op('List the sessions bound on every node (in a cluster: each with its node)', 'sessions:read', { parameters: [hostParam] }, { 200: ok('Sessions', { type: 'object', properties: { sessions: { type: 'array', items: ref('Session') } } }) }),
      },
      '/sessions/{jid}': {
        delete: op('End a session (stream error policy-violation)', 'sessions:write', { parameters: [jidParam('The full JID, user@domain/resource.')] }, { 200: ok('Ended', ref('JidResult')), ...errors(400, 404) }),
      },
      '/rooms': {
        get: op('List MUC rooms (persistent and public ones)', 'rooms:read', { parameters: [hostParam] }, { 200: ok('Rooms', { type: 'object', properties: { rooms: { type: 'array', items: ref('Room') } } }) }),
      },
      '/rooms/{jid}': {
        delete: op('Destroy a room (XEP-0045 §10.9); needs a JID in admins:', 'rooms:write', {
          parameters: [jidParam('The room, room@conference.domain.'), { name: 'reason', in: 'query', required: false, schema: { type: 'string' } }],
        }, { 200: ok('Destroyed', ref('JidResult')), ...errors(400, 404, 409) }),
      },
      '/reports': {
        get: op('List the XEP-0377 spam and abuse reports users filed, oldest first', 'reports:read', {
          parameters: [hostParam, { name: 'limit', in: 'query', required: false, description: 'At most this many per host.', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } }],
        }, { 200: ok('Reports', { type: 'object', properties: { reports: { type: 'array', items: ref('Report') } } }), ...errors(400, 404) }),
      },
      '/reports/{host}/{id}': {
        delete: op('Dismiss a report', 'reports:write', { parameters: [reportHost, reportId] }, { 200: ok('Dismissed', { type: 'object', properties: { id: { type: 'string' }, dismissed: { type: 'boolean' } } }), ...errors(404) }),
      },
      '/reports/{host}/{id}/disable': {
        post: op('Disable the reported account (an account of that host): its sessions end, the reports about it are dropped', 'reports:write', { parameters: [reportHost, reportId] }, {
          200: ok('Disabled', { type: 'object', properties: { id: { type: 'string' }, jid: { type: 'string' }, disabled: { type: 'boolean' } } }),
          ...errors(404, 409),
        }),
      },
      '/stats': {
        get: op('Server status and live figures', 'stats:read', {}, { 200: ok('Figures', ref('Stats')) }),
      },
      '/reload': {
        post: op('Re-read the config file and the certificates (like SIGHUP)', 'server:reload', {}, { 200: ok('What changed', ref('Reload')), ...errors(422) }),
      },
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'A token from `parley admin token create`.' },
        session: { type: 'apiKey', in: 'cookie', name: 'parley_admin', description: 'The web admin session (log in at /admin/).' },
      },
      responses: Object.fromEntries(
        [
          [400, 'Bad request'], [401, 'No token, or an unknown one (WWW-Authenticate: Bearer)'], [403, 'The token lacks the scope, or the CSRF header is missing'],
          [404, 'No such account, session, room or host (or no second factor to reset)'], [409, 'Conflict'], [415, 'The body is not application/json'], [422, 'The new config is invalid; the old one keeps running'],
        ].map(([code, description]) => [`E${code}`, { description, content: json(ref('Error')) }]),
      ),
      schemas: {
        Error: { type: 'object', required: ['error', 'message'], properties: { error: { type: 'string' }, message: { type: 'string' } } },
        JidResult: { type: 'object', required: ['jid'], properties: { jid: { type: 'string' } } },
        User: {
          type: 'object',
          properties: { jid: { type: 'string' }, host: { type: 'string' }, user: { type: 'string' }, createdAt: { type: 'string', format: 'date-time' }, disabled: { type: 'boolean' }, sessions: { type: 'integer' }, twoFactor: { type: 'boolean', description: 'TOTP second factor on.' } },
        },
        UserPage: { type: 'object', properties: { users: { type: 'array', items: ref('User') }, next: { type: ['string', 'null'], description: 'Pass as `after` for the next page; absent on the last page.' } } },
        Session: {
          type: 'object',
          properties: { jid: { type: 'string' }, host: { type: 'string' }, remoteAddress: { type: 'string' }, secure: { type: 'boolean' }, available: { type: 'boolean' }, hibernating: { type: 'boolean' }, priority: { type: 'integer' }, node: { type: 'string' } },
        },
        Report: {
          type: 'object',
          properties: {
            host: { type: 'string' }, id: { type: 'string' }, reporter: { type: 'string', description: 'The reporting account.' },
            report: { type: 'object', properties: { jid: { type: 'string', description: 'The reported JID.' }, reason: { type: 'string', enum: ['spam', 'abuse', 'unknown'] }, text: { type: 'string' }, stanzaIds: { type: 'array', items: { type: 'object', properties: { by: { type: 'string' }, id: { type: 'string' } } } }, when: { type: 'integer', description: 'Milliseconds since the epoch.' } } },
          },
        },
        Room: { type: 'object', properties: { jid: { type: 'string' }, title: { type: ['string', 'null'] }, persistent: { type: 'boolean' }, public: { type: 'boolean' }, occupants: { type: 'integer' } } },
        Stats: {
          type: 'object',
          properties: {
            name: { type: 'string' }, version: { type: 'string' }, hosts: { type: 'array', items: { type: 'string' } }, uptimeSeconds: { type: 'integer' },
            sessions: { type: 'integer' }, accounts: { type: 'integer' }, connections: { type: 'object', additionalProperties: { type: 'number' } },
            stanzas: { type: 'object', properties: { in: { type: 'number' }, out: { type: 'number' } } },
            memory: { type: 'object', properties: { rssBytes: { type: 'integer' }, heapUsedBytes: { type: 'integer' } } },
            eventLoopLagSeconds: { type: ['number', 'null'] },
          },
        },
        Reload: {
          type: 'object',
          properties: {
            modules: { type: 'object', additionalProperties: { type: 'object', properties: { started: { type: 'array', items: { type: 'string' } }, stopped: { type: 'array', items: { type: 'string' } }, restarted: { type: 'array', items: { type: 'string' } } } } },
            certificates: { type: 'boolean' },
            restartNeeded: { type: 'array', items: { type: 'string' }, description: 'Config sections that changed but apply only after a restart.' },
          },
        },
      },
    },
  };
}
