// AcceptedStream (shared by component and inbound s2s streams), over a real TCP connection:
// each way a stream ends writes what RFC 6120 §4.4/§4.9 asks and tears down exactly once, a
// peer that does not read is cut off, and queued stanzas reach the router in order with reading
// paused while the queue is full.
import { expect } from 'chai';
import net from 'node:net';
import { AcceptedStream } from '../../../lib/stream/accepted-stream.js';
import { xmlStreamFraming } from '../../../lib/stream/xml-framing.js';
import { SocketTransport } from '../../../lib/transport/socket-transport.js';
import { silentLogger } from '../../../lib/log.js';
import { xml, type Element } from '../../../lib/xml/element.js';

type State = 'open';

class ProbeStream extends AcceptedStream<State> {
  protected readonly peerKind = 'probe';
  teardowns = 0;
  readonly routed: string[] = [];
  gate: Promise<void> = Promise.resolve();

  constructor(readonly socket: net.Socket, limits: { outboundBufferBytes: number; inboundQueue: number }) {
    const transport = new SocketTransport(socket, undefined);
    super(transport, xmlStreamFraming('jabber:server'), limits, silentLogger(), 'open');
    transport.onClose(() => this.onTransportClosed());
  }

  protected sendHeader(): void {
    this.writeRaw(this.framing.open({ id: 'probe' }));
    this.headerSent = true;
  }
  protected onTeardown(): void {
    this.teardowns++;
  }
  protected async route(el: Element): Promise<void> {
    await this.gate;
    this.routed.push(el.attrs.id as string);
  }

  header(): void { this.sendHeader(); }
  write(data: string): void { this.writeRaw(data); }
  peerClosed(): void { this.onStreamClose(); }
  close(): void { this.closeStream(); }
  push(el: Element): void { this.enqueue(el); }
  get paused(): boolean { return this.socket.isPaused(); }
}

interface Pair {
  stream: ProbeStream;
  client: net.Socket;
  received: () => string;
  ended: Promise<void>;
  server: net.Server;
}

async function pair(limits = { outboundBufferBytes: 1 << 20, inboundQueue: 4 }): Promise<Pair> {
  let stream!: ProbeStream;
  const server = net.createServer();
  const accepted = new Promise<void>((resolve) => {
    server.on('connection', (socket) => {
      stream = new ProbeStream(socket, limits);
      resolve();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  let data = '';
  client.setEncoding('utf8').on('data', (c: string) => { data += c; });
  const ended = new Promise<void>((r) => client.on('end', () => r()).on('close', () => r()));
  await accepted;
  return { stream, client, received: () => data, ended, server };
}

const waitUntil = async (ok: () => boolean, what: string): Promise<void> => {
  const deadline = Date.now() + 3000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('AcceptedStream', () => {
  const open: Pair[] = [];
  afterEach(() => {
    for (const p of open.splice(0)) {
      p.client.destroy();
      p.server.close();
    }
  });
  const start = async (limits?: { outboundBufferBytes: number; inboundQueue: number }) => {
    const p = await pair(limits);
    open.push(p);
    return p;
  };

  it('answers a stream error before any header with header, error and close tag, then ends the connection, tearing down once', async () => {
    const p = await start();
    p.stream.streamError('host-unknown', 'no such domain');
    await p.ended;
    expect(p.received()).to.equal(
      "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' id='probe'>" +
      '<stream:error><host-unknown xmlns="urn:ietf:params:xml:ns:xmpp-streams"/><text xmlns="urn:ietf:params:xml:ns:xmpp-streams" xml:lang="en">no such domain</text></stream:error>' +
      '</stream:stream>',
    );
    p.stream.streamError('conflict');
    p.stream.peerClosed();
    await waitUntil(() => p.stream.teardowns === 1 && p.stream.closed, 'teardown');
    expect(p.stream.teardowns).to.equal(1);
    expect(p.received()).to.not.contain('conflict');
  });

  it('closes its stream once when the peer closes first, and once when it closes itself', async () => {
    const p = await start();
    p.stream.header();
    p.stream.peerClosed();
    p.stream.peerClosed();
    p.stream.close();
    await p.ended;
    expect(p.received().match(/<\/stream:stream>/g)).to.have.length(1);
    expect(p.stream.teardowns).to.equal(1);

    const q = await start();
    q.stream.header();
    q.stream.close();
    await q.ended;
    expect(q.received().endsWith("id='probe'></stream:stream>")).to.equal(true);
    expect(q.stream.teardowns).to.equal(1);
  });

  it('ends a header-less stream it closes with connection-timeout', async () => {
    const p = await start();
    p.stream.close();
    await p.ended;
    expect(p.received()).to.contain('<connection-timeout');
  });

  it('cuts off a peer that does not read once the outbound buffer passes the limit', async () => {
    const p = await start({ outboundBufferBytes: 64 * 1024, inboundQueue: 4 });
    p.client.pause();
    p.stream.header();
    const chunk = 'x'.repeat(256 * 1024);
    for (let i = 0; i < 64 && p.stream.teardowns === 0; i++) p.stream.write(chunk);
    expect(p.stream.teardowns).to.equal(1);
    await waitUntil(() => p.stream.socket.destroyed, 'socket destroyed');
  });

  it('routes queued stanzas in order, pausing reading while the queue is full and resuming below half', async () => {
    const p = await start({ outboundBufferBytes: 1 << 20, inboundQueue: 4 });
    let release!: () => void;
    p.stream.gate = new Promise((r) => { release = r; });
    // m1 is with the router at once; m2..m5 fill the queue of 4.
    for (let i = 1; i <= 4; i++) p.stream.push(xml('message', { id: `m${i}` }));
    expect(p.stream.paused).to.equal(false);
    p.stream.push(xml('message', { id: 'm5' }));
    expect(p.stream.paused).to.equal(true);
    release();
    await waitUntil(() => p.stream.routed.length === 5, 'all routed');
    expect(p.stream.routed).to.deep.equal(['m1', 'm2', 'm3', 'm4', 'm5']);
    expect(p.stream.paused).to.equal(false);
  });
});
