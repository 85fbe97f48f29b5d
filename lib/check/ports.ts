// A listener's port when the server may already be running: free (it will be bound at start),
// held by an XMPP server answering a stream header (this deployment, running), or held by
// something else (a conflict).
import net from 'node:net';

/** `expected`: a server of the listener's kind answers (most likely this deployment, running). */
export type PortState = 'free' | 'expected' | 'other';
export type ListenerKind = 'xmpp-client' | 'xmpp-server' | 'xmpp-component' | 'http' | 'tls';

const STREAM_NS: Record<string, string> = { 'xmpp-client': 'jabber:client', 'xmpp-server': 'jabber:server', 'xmpp-component': 'jabber:component:accept' };

/** Connects to a port in use and tells what answers there, within `timeoutMs`. */
export function whoListens(address: string, port: number, kind: ListenerKind, timeoutMs = 2000): Promise<PortState> {
  const host = address === '0.0.0.0' ? '127.0.0.1' : address === '::' ? '::1' : address;
  return new Promise((resolve) => {
    let got = '';
    const socket = net.connect({ host, port });
    const done = (state: PortState) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(state);
    };
    const timer = setTimeout(() => done('other'), timeoutMs);
    socket.on('error', () => done('free'));
    socket.on('connect', () => {
      if (kind === 'http') socket.write(`HEAD / HTTP/1.0\r\nHost: ${host}\r\n\r\n`);
      else if (kind !== 'tls') {
        socket.write(`<?xml version='1.0'?><stream:stream xmlns='${STREAM_NS[kind]}' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`);
      } else {
        // Direct TLS: a TLS server answers a ClientHello; anything that answers with a TLS record will do.
        socket.write(Buffer.from('160301002f0100002b0303' + '00'.repeat(32) + '000002002f0100', 'hex'));
      }
    });
    socket.on('data', (d) => {
      got += d.toString('latin1');
      if (kind === 'http') {
        if (got.startsWith('HTTP/')) done('expected');
      } else if (kind === 'tls') {
        // A TLS record (handshake or alert) back.
        if (got.charCodeAt(0) === 0x16 || got.charCodeAt(0) === 0x15) done('expected');
      } else if (/<stream:stream|<stream:error/.test(got)) done('expected');
    });
  });
}
