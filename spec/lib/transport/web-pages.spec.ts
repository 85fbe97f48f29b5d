// Unit specs for lib/web: safe paths for static files, host-meta documents, the status page.
import { expect } from 'chai';
import { safeSegments } from '../../../lib/web/static-files.js';
import { hostMetaJson, hostMetaXml } from '../../../lib/web/host-meta.js';
import { formatUptime, statusPage } from '../../../lib/web/status-page.js';

describe('safeSegments (static files stay under their root)', () => {
  it('accepts ordinary relative paths', () => {
    expect(safeSegments('converse.min.js')).to.deep.equal(['converse.min.js']);
    expect(safeSegments('images/logo/conversejs-filled.svg')).to.deep.equal(['images', 'logo', 'conversejs-filled.svg']);
    expect(safeSegments('a%20b.js')).to.deep.equal(['a b.js']);
  });

  it('refuses parent and current directory segments, encoded or not', () => {
    for (const p of ['..', '../package.json', 'a/../../x', '%2e%2e/x', '%2E%2E%2Fpackage.json', '.', './a.js', 'a/%2e/b']) {
      expect(safeSegments(p), p).to.equal(undefined);
    }
  });

  it('refuses hidden files, empty segments, backslashes, NUL and bad escapes', () => {
    for (const p of ['.env', 'a/.git/config', 'a//b', '/etc/passwd', 'a%5c..%5cb', 'a\\b', 'a%00.js', '%zz', '']) {
      expect(safeSegments(p), p).to.equal(undefined);
    }
  });
});

describe('host-meta documents (XEP-0156)', () => {
  it('lists the WebSocket and BOSH endpoints under the base URL', () => {
    const xml = hostMetaXml('https://xmpp.example.com', { websocket: true, bosh: true });
    expect(xml).to.contain(`<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>`);
    expect(xml).to.contain(`<Link rel='urn:xmpp:alt-connections:websocket' href='wss://xmpp.example.com/xmpp-websocket'/>`);
    expect(xml).to.contain(`<Link rel='urn:xmpp:alt-connections:xbosh' href='https://xmpp.example.com/http-bind'/>`);
    expect(JSON.parse(hostMetaJson('http://h:5280', { websocket: true, bosh: false }))).to.deep.equal({
      links: [{ rel: 'urn:xmpp:alt-connections:websocket', href: 'ws://h:5280/xmpp-websocket' }],
    });
  });
});

describe('status page', () => {
  it('formats uptime from seconds to days', () => {
    expect(formatUptime(5_000)).to.equal('5s');
    expect(formatUptime(3_723_000)).to.equal('1h 2m 3s');
    expect(formatUptime(90_061_000)).to.equal('1d 1h 1m 1s');
  });

  it('names the server, its version and domains, escaped, and links to the web client', () => {
    const html = statusPage({ name: 'Parley', version: '0.1.0', hosts: ['example.com', '<b>'], startedAt: 0, webClientPath: '/chat', websocket: true, bosh: false, metrics: true }, 61_000);
    expect(html).to.contain('<h1>Parley</h1>').and.to.contain('version 0.1.0').and.to.contain('<code>example.com</code>');
    expect(html).to.contain('&#60;b&#62;').and.not.to.contain('<b>');
    expect(html).to.contain('<a href="/chat">').and.to.contain('1m 1s').and.to.contain('/xmpp-websocket').and.not.to.contain('/http-bind');
  });
});
