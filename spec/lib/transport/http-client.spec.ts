import { expect } from 'chai';
import type { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { baseUrl, clientInfo, isLoopback, requestHost } from '../../../lib/transport/http-client.js';
import { OriginPolicy } from '../../../lib/transport/origin-policy.js';
import { requestPath } from '../../../lib/transport/http-routes.js';

function fakeRequest(remoteAddress: string, headers: Record<string, string> = {}): IncomingMessage {
  const socket = new Socket();
  Object.defineProperty(socket, 'remoteAddress', { value: remoteAddress });
  return { socket, headers } as unknown as IncomingMessage;
}

describe('clientInfo (who is on the other end of an HTTP request)', () => {
  it('treats a plain connection from a remote address as not encrypted and ignores its X-Forwarded-* headers', () => {
    const info = clientInfo(fakeRequest('192.0.2.7', { 'x-forwarded-for': '198.51.100.1', 'x-forwarded-proto': 'https' }));
    expect(info).to.include({ remoteAddress: '192.0.2.7', secure: false, scheme: 'http' });
  });

  it('treats a loopback peer as secure: a local client, or a local proxy that did TLS', () => {
    expect(clientInfo(fakeRequest('127.0.0.1'))).to.include({ remoteAddress: '127.0.0.1', secure: true });
    expect(clientInfo(fakeRequest('::1'))).to.include({ secure: true });
    expect(clientInfo(fakeRequest('::ffff:127.0.0.1'))).to.include({ remoteAddress: '127.0.0.1', secure: true });
  });

  it('believes a local proxy about the client address and about plain http', () => {
    const viaTls = clientInfo(fakeRequest('127.0.0.1', { 'x-forwarded-for': '203.0.113.9, 198.51.100.3', 'x-forwarded-proto': 'https' }));
    expect(viaTls).to.include({ remoteAddress: '198.51.100.3', secure: true, scheme: 'https' });
    const plain = clientInfo(fakeRequest('127.0.0.1', { 'x-forwarded-for': '198.51.100.3', 'x-forwarded-proto': 'http' }));
    expect(plain).to.include({ remoteAddress: '198.51.100.3', secure: false, scheme: 'http' });
  });

  it('ignores an X-Forwarded-For that is not an address', () => {
    expect(clientInfo(fakeRequest('127.0.0.1', { 'x-forwarded-for': 'unknown' })).remoteAddress).to.equal('127.0.0.1');
  });

  it('knows loopback addresses', () => {
    expect(['127.0.0.1', '127.8.9.10', '::1'].every(isLoopback)).to.equal(true);
    expect(['10.0.0.1', '::', '1127.0.0.1', 'localhost'].some(isLoopback)).to.equal(false);
  });
});

describe('requestHost and baseUrl', () => {
  it('accepts host names, IPv4 and bracketed IPv6, with ports', () => {
    for (const h of ['example.com', 'chat.example.com:5280', '127.0.0.1:80', '[::1]:5280']) expect(requestHost(fakeRequest('127.0.0.1', { host: h })), h).to.equal(h);
  });

  it('refuses Host headers that could inject markup or paths', () => {
    for (const h of ['evil.com/x', "a'b", 'a b', 'a<b>', 'x@evil.com', '']) expect(requestHost(fakeRequest('127.0.0.1', { host: h })), h).to.equal(undefined);
  });

  it('prefers http.publicUrl, trimmed of its trailing slash', () => {
    const req = fakeRequest('127.0.0.1', { host: 'internal:5280' });
    expect(baseUrl(req, 'https://xmpp.example.com/')).to.equal('https://xmpp.example.com');
    expect(baseUrl(req, undefined)).to.equal('http://internal:5280');
    expect(baseUrl(fakeRequest('127.0.0.1', { host: 'chat.example.com', 'x-forwarded-proto': 'https' }), undefined)).to.equal('https://chat.example.com');
  });
});

describe('OriginPolicy', () => {
  const policy = new OriginPolicy(['https://app.example.net'], ['example.com'], 'https://xmpp.example.com');
  const req = (origin: string | undefined, host = 'xmpp.internal:5280') => fakeRequest('127.0.0.1', origin === undefined ? { host } : { host, origin });

  it('allows clients that send no Origin (not browsers)', () => {
    expect(policy.allows(req(undefined))).to.equal(true);
  });

  it("allows the server's own pages: same host and port as the request", () => {
    expect(policy.allows(req('http://xmpp.internal:5280'))).to.equal(true);
    expect(policy.allows(req('http://xmpp.internal:5281'))).to.equal(false);
    expect(policy.allows(req('https://chat.example.com', 'chat.example.com'))).to.equal(true);
    expect(policy.allows(req('http://chat.example.com', 'chat.example.com:80'))).to.equal(true);
  });

  it('allows publicUrl, https://<served domain> and configured origins', () => {
    expect(policy.allows(req('https://xmpp.example.com'))).to.equal(true);
    expect(policy.allows(req('https://example.com'))).to.equal(true);
    expect(policy.allows(req('https://app.example.net'))).to.equal(true);
  });

  it('refuses other origins, the opaque origin null and non-web schemes', () => {
    for (const o of ['https://evil.example', 'http://example.com', 'null', 'file://', 'chrome-extension://abc']) expect(policy.allows(req(o)), o).to.equal(false);
  });

  it('allows everything with *', () => {
    expect(new OriginPolicy(['*'], ['example.com'], undefined).allows(req('https://evil.example'))).to.equal(true);
  });
});

describe('requestPath', () => {
  it('takes the path of origin-form and absolute-form targets, never a scheme-relative URL', () => {
    expect(requestPath('/http-bind?x=1')).to.equal('/http-bind');
    expect(requestPath('//evil.example/chat')).to.equal('//evil.example/chat');
    expect(requestPath('http://host:5280/chat/dist/a.js')).to.equal('/chat/dist/a.js');
    expect(requestPath('*')).to.equal(undefined);
  });
});
