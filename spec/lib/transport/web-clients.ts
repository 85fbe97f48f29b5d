// Raw WebSocket and BOSH clients for the web transport specs: the exact bytes a test gives them,
// and an independent parse (saxes with namespaces, not Parley's parser) of every answer, so a
// namespace the server forgot shows up as a wrong `ns`, not as a silently repaired element.
import http from 'node:http';
import { SaxesParser, type SaxesTagNS } from 'saxes';
import { WebSocket, type ClientOptions } from 'ws';
import { XNode } from '../../helpers/raw-client.js';
import { ScramClient } from '../sasl/scram-client.js';

export const NS = {
  framing: 'urn:ietf:params:xml:ns:xmpp-framing',
  client: 'jabber:client',
  stream: 'http://etherx.jabber.org/streams',
  streams: 'urn:ietf:params:xml:ns:xmpp-streams',
  sasl: 'urn:ietf:params:xml:ns:xmpp-sasl',
  bind: 'urn:ietf:params:xml:ns:xmpp-bind',
  httpbind: 'http://jabber.org/protocol/httpbind',
  xbosh: 'urn:xmpp:xbosh',
  ping: 'urn:xmpp:ping',
} as const;

/** Parses one complete XML document (a WebSocket message, a BOSH body) into an XNode tree. */
export function parseXml(text: string): XNode {
  const sax = new SaxesParser<{ xmlns: true }>({ xmlns: true });
  const stack: XNode[] = [];
  let root: XNode | undefined;
  sax.on('error', (err) => {
    throw err;
  });
  sax.on('opentag', (tag: SaxesTagNS) => {
    const attrs: Record<string, string> = {};
    for (const [k, a] of Object.entries(tag.attributes)) attrs[k] = a.value;
    const el = new XNode(tag.local, tag.uri, attrs, tag.name);
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(el);
    else root = el;
    stack.push(el);
  });
  sax.on('closetag', () => void stack.pop());
  sax.on('text', (t) => {
    const top = stack[stack.length - 1];
    if (top) top.text += t;
  });
  sax.write(text).close();
  if (!root) throw new Error('no element');
  return root;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ------------------------------------------------------------------------------------------ WebSocket

export interface WsClose {
  code: number;
  reason: string;
}

/** A WebSocket that records every message it receives, parsed. */
export class RawWs {
  readonly received: XNode[] = [];
  readonly raw: string[] = [];
  readonly closed: Promise<WsClose>;
  private waiters: Array<() => void> = [];

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('message', (data) => {
      const text = data.toString();
      this.raw.push(text);
      this.received.push(parseXml(text));
      for (const w of this.waiters.splice(0)) w();
    });
    ws.on('error', () => undefined);
  }

  /** Opens; rejects with the HTTP status when the server refuses the upgrade. */
  static open(url: string, protocols: string[] = ['xmpp'], options: ClientOptions = {}): Promise<RawWs> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols, options);
      const client = new RawWs(ws);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => {
        reject(Object.assign(new Error(`refused with HTTP ${res.statusCode}`), { status: res.statusCode }));
        res.resume();
        ws.terminate();
      });
      ws.once('error', reject);
    });
  }

  send(text: string): void {
    this.ws.send(text);
  }

  /** The first element received at index `from` or later that matches. */
  async next(match: (n: XNode) => boolean, from = 0, timeoutMs = 5_000): Promise<XNode> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.slice(from).find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching message; got ${this.raw.join(' | ')}`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), this.closed.then(() => undefined), sleep(100)]);
    }
  }

  /** Sends and returns the next element that matches, among those received afterwards. */
  async request(text: string, match: (n: XNode) => boolean): Promise<XNode> {
    const from = this.received.length;
    this.send(text);
    return this.next(match, from);
  }

  open(domain: string): Promise<XNode> {
    return this.request(`<open xmlns='${NS.framing}' to='${domain}' version='1.0'/>`, (n) => n.is('features', NS.stream));
  }

  close(): void {
    this.ws.close();
  }
}

/** SCRAM-SHA-256 over a request/response function; returns the server's final element. */
export async function scramLogin(request: (xml: string) => Promise<XNode>, user: string, password: string): Promise<XNode> {
  const scram = new ScramClient({ hash: 'SHA-256', username: user, password });
  const challenge = await request(`<auth xmlns='${NS.sasl}' mechanism='SCRAM-SHA-256'>${scram.first().toString('base64')}</auth>`);
  if (!challenge.is('challenge', NS.sasl)) return challenge;
  const final = scram.final(Buffer.from(challenge.text, 'base64'));
  return request(`<response xmlns='${NS.sasl}'>${final.toString('base64')}</response>`);
}

// ------------------------------------------------------------------------------------------ BOSH

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The parsed body when it is XML, else undefined. */
  body: XNode | undefined;
  /** Milliseconds from sending to the complete answer. */
  ms: number;
}

/** One HTTP request on its own connection (no pooling: held requests must not queue). */
export function httpRequest(port: number, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: XNode | undefined;
        try {
          parsed = text.trim().startsWith('<') ? parseXml(text) : undefined;
        } catch {
          parsed = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parsed, ms: Date.now() - started });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

export function boshPost(port: number, body: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  return httpRequest(port, 'POST', '/http-bind', body, { 'content-type': 'text/xml; charset=utf-8', ...headers });
}

/** A BOSH session driven by hand: rids, bodies and answers as the test decides. */
export class RawBosh {
  sid = '';
  rid: number;
  creation: XNode | undefined;

  constructor(
    readonly port: number,
    readonly domain: string,
    rid = 1000 + Math.floor(Math.random() * 1e6),
  ) {
    this.rid = rid;
  }

  async create(attrs: Record<string, string> = {}): Promise<HttpAnswer> {
    const extra = Object.entries({ wait: '10', hold: '1', ...attrs }).map(([k, v]) => ` ${k}='${v}'`).join('');
    const answer = await boshPost(
      this.port,
      `<body xmlns='${NS.httpbind}' xmlns:xmpp='${NS.xbosh}' rid='${this.rid++}' to='${this.domain}' xml:lang='en' ver='1.11' xmpp:version='1.0'${extra}/>`,
    );
    this.creation = answer.body;
    this.sid = answer.body?.attrs.sid ?? '';
    return answer;
  }

  /** Sends a body with this payload and the next rid (or `rid`). */
  send(payload = '', attrs: Record<string, string> = {}, rid = this.rid++): Promise<HttpAnswer> {
    const extra = Object.entries(attrs).map(([k, v]) => ` ${k}='${v}'`).join('');
    return boshPost(this.port, `<body xmlns='${NS.httpbind}' xmlns:xmpp='${NS.xbosh}' sid='${this.sid}' rid='${rid}'${extra}>${payload}</body>`);
  }

  /** Sends a payload and returns its answer's children (polling once more if it came back empty). */
  async exchange(payload: string, attrs: Record<string, string> = {}): Promise<XNode[]> {
    const answer = await this.send(payload, attrs);
    const children = answer.body?.children ?? [];
    if (children.length || answer.body?.attrs.type === 'terminate') return children;
    return (await this.send()).body?.children ?? [];
  }

  async login(user: string, password: string, resource = 'bosh'): Promise<string> {
    const outcome = await scramLogin(async (xml) => (await this.exchange(xml))[0]!, user, password);
    if (!outcome.is('success', NS.sasl)) throw new Error(`login failed: ${outcome.toString()}`);
    const features = await this.exchange('', { 'xmpp:restart': 'true', to: this.domain });
    if (!features[0]?.is('features', NS.stream)) throw new Error(`no features after restart: ${features.map(String).join('')}`);
    const bound = await this.exchange(`<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='${NS.bind}'><resource>${resource}</resource></bind></iq>`);
    const jid = bound[0]?.child('bind', NS.bind)?.child('jid')?.text;
    if (!jid) throw new Error(`bind failed: ${bound.map(String).join('')}`);
    return jid;
  }
}
