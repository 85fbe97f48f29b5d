// A TCP transport and a STARTTLS feature for StanzaJS, which ships only WebSocket and BOSH
// (its ROADMAP lists "Support direct TCP/TLS connections" as not done) while Parley has no
// WebSocket yet. Both plug into Stanza's own extension points: `client.transports[name]`
// (constructed by `client.connect()` from `config.transports[name]`, a URL) and
// `client.registerFeature()`. Everything above the byte stream (stream features, SASL, bind,
// IQ tracking, messages) is Stanza's own code.
//
// URLs: `xmpp://host:port` (plain TCP; the STARTTLS feature then upgrades it) or
// `xmpps://host:port` (XEP-0368 direct TLS, ALPN xmpp-client).
import net from 'node:net';
import tls from 'node:tls';
import { JXT, type Agent, type Stanzas, type Transport, type TransportConfig } from 'stanza';

type Stream = Stanzas.Stream;

export interface TcpTransportOptions {
  /** Highest TLS version to offer, e.g. 'TLSv1.2' to get tls-unique for SCRAM-*-PLUS. */
  maxVersion?: tls.SecureVersion;
}

/** The transport class to install as `client.transports.tcp`. */
export function tcpTransport(options: TcpTransportOptions = {}): Agent['transports'][string] {
  return class TcpTransport implements StanzaTcpTransport {
    hasStream = false;
    stream?: Stream;
    authenticated?: boolean;
    socket?: net.Socket;
    tlsSocket?: tls.TLSSocket;
    private config?: TransportConfig;
    private parser?: JXT.StreamParser;
    private closing = false;
    private gone = false;
    private closeTimer?: NodeJS.Timeout;

    constructor(
      private readonly client: Agent,
      _sm: unknown,
      private readonly stanzas: JXT.Registry,
    ) {}

    connect(opts: TransportConfig): void {
      this.config = opts;
      const url = new URL(opts.url ?? '');
      const host = url.hostname;
      const port = Number(url.port);
      const direct = url.protocol === 'xmpps:';
      const socket = direct
        ? tls.connect({ host, port, servername: opts.server, ALPNProtocols: ['xmpp-client'], rejectUnauthorized: false, maxVersion: options.maxVersion })
        : net.connect({ host, port });
      this.attach(socket);
      if (direct) this.tlsSocket = socket as tls.TLSSocket;
      socket.once(direct ? 'secureConnect' : 'connect', () => {
        this.client.emit('connected');
        this.restart();
      });
    }

    /** Upgrades the plain connection after `<proceed/>` (RFC 6120 §5.4.3.3). */
    startTls(): Promise<void> {
      const plain = this.socket;
      if (!plain || this.tlsSocket) return Promise.reject(new Error('not a plain TCP connection'));
      plain.removeAllListeners('data');
      plain.removeAllListeners('close');
      plain.removeAllListeners('error');
      const secure = tls.connect({ socket: plain, servername: this.config?.server, rejectUnauthorized: false, maxVersion: options.maxVersion });
      this.attach(secure);
      this.tlsSocket = secure;
      return new Promise((resolve, reject) => {
        secure.once('secureConnect', () => resolve());
        secure.once('error', reject);
      });
    }

    restart(): void {
      this.hasStream = false;
      this.newParser();
      const lang = this.config?.lang ?? 'en';
      this.write(
        `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' to='${this.config?.server}' xml:lang='${lang}'>`,
      );
    }

    async send(name: string, data?: JXT.JSONData): Promise<void> {
      const output = data ? this.stanzas.export(name, data)?.toString() : undefined;
      if (output) this.write(output);
    }

    disconnect(clean = true): void {
      if (this.socket && !this.closing && this.hasStream && clean) {
        this.closing = true;
        this.write('</stream:stream>');
        this.closeTimer = setTimeout(() => this.disconnect(false), 1000);
        return;
      }
      clearTimeout(this.closeTimer);
      this.hasStream = false;
      this.stream = undefined;
      this.socket?.destroy();
      this.socket = undefined;
      this.lost();
    }

    private attach(socket: net.Socket): void {
      this.socket = socket;
      socket.on('data', (chunk: Buffer) => {
        const text = chunk.toString('utf8');
        this.client.emit('raw', 'incoming', text);
        this.parser?.write(text);
      });
      socket.on('error', (err) => this.client.emit('raw', 'incoming', `<!-- socket error: ${err.message} -->`));
      socket.on('close', () => this.lost());
    }

    private newParser(): void {
      this.parser?.removeAllListeners();
      const parser = new JXT.StreamParser({
        acceptLanguages: this.config?.acceptLanguages,
        allowComments: false,
        lang: this.config?.lang,
        registry: this.stanzas,
        wrappedStream: true,
      });
      parser.on('data', (e: JXT.ParsedData) => {
        if (e.event === 'stream-start') {
          this.hasStream = true;
          this.stream = e.stanza as Stream;
          this.client.emit('stream:start', e.stanza as Stream);
          return;
        }
        if (e.event === 'stream-end') {
          this.client.emit('stream:end');
          this.disconnect();
          return;
        }
        this.client.emit('stream:data', e.stanza, e.kind);
      });
      parser.on('error', (err: Error) => {
        this.client.emit('stream:error', { condition: 'invalid-xml' }, err);
        this.disconnect(false);
      });
      this.parser = parser;
    }

    private write(text: string): void {
      if (!this.socket || this.socket.destroyed) return;
      this.client.emit('raw', 'outgoing', text);
      this.socket.write(text);
    }

    private lost(): void {
      if (this.gone) return;
      this.gone = true;
      if (this.client.transport === this) this.client.emit('--transport-disconnected');
    }
  };
}

export interface StanzaTcpTransport extends Transport {
  socket?: net.Socket;
  tlsSocket?: tls.TLSSocket;
  startTls(): Promise<void>;
}

/**
 * STARTTLS (RFC 6120 §5) as a Stanza stream feature: `<starttls/>`, wait for `<proceed/>`,
 * upgrade the TCP transport, restart the stream. Runs before SASL (priority 100).
 */
export function starttlsFeature(client: Agent): void {
  client.registerFeature('tls', 10, (_features, done) => {
    const transport = client.transport as StanzaTcpTransport | undefined;
    if (!transport?.startTls || transport.tlsSocket) return done();
    const onTls = (el: { type: string }): void => {
      client.off('tls', onTls);
      if (el.type !== 'proceed') return done('disconnect', 'STARTTLS refused');
      transport.startTls().then(
        () => {
          client.features.negotiated.tls = true;
          done('restart');
        },
        (err: Error) => done('disconnect', `TLS handshake failed: ${err.message}`),
      );
    };
    client.on('tls', onTls);
    void client.send('tls', { type: 'start' });
  });
  client.on('--reset-stream-features', () => {
    client.features.negotiated.tls = false;
  });
}
