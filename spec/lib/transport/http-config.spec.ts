// The `http` config section's web options (lib/config/schema.ts), as the web transports read them.
import { expect } from 'chai';
import { parseConfig } from '../../../lib/config/load.js';
import { MODULE_CATALOG } from '../../../lib/modules/catalog.js';

function http(section: Record<string, unknown>) {
  return parseConfig({ hosts: ['example.com'], http: section }, MODULE_CATALOG, '/srv').http;
}

function problem(section: Record<string, unknown>): string {
  try {
    http(section);
  } catch (err) {
    return (err as Error).message;
  }
  return 'no error';
}

describe('http config (web transports)', () => {
  it('has safe defaults: WebSocket, BOSH and the web client on, same-site origins only', () => {
    const h = http({});
    expect(h.websocket).to.deep.equal({ enabled: true, origins: [], pingInterval: 30_000 });
    expect(h.bosh).to.deep.equal({ enabled: true, maxWait: 60_000, maxHold: 1, maxRequests: 2, inactivity: 60_000, maxPause: 120_000 });
    expect(h.webClient).to.deep.equal({ enabled: true, path: '/chat' });
    expect(h.limits).to.deep.equal({ bodySize: 1024 * 1024, headerSize: 16 * 1024, requestsPerIp: 128, requestTimeout: 30_000, headersTimeout: 10_000 });
  });

  it('normalises origins and accepts *', () => {
    expect(http({ websocket: { origins: ['https://app.example.net/', 'http://localhost:8080', '*'] } }).websocket.origins).to.deep.equal([
      'https://app.example.net',
      'http://localhost:8080',
      '*',
    ]);
  });

  it('refuses an origin with a path or another scheme', () => {
    expect(problem({ websocket: { origins: ['https://app.example.net/chat'] } })).to.match(/http\.websocket\.origins\[0\].*not an origin/s);
    expect(problem({ websocket: { origins: ['ftp://example.net'] } })).to.match(/not an origin/);
  });

  it('refuses a web client path that is taken or malformed', () => {
    for (const path of ['/http-bind', '/xmpp-websocket', '/metrics', '/.well-known/x', 'chat', '/chat/', '/a b']) {
      expect(problem({ webClient: { path } }), path).to.match(/webClient\.path/);
    }
    expect(http({ webClient: { path: '/im/web' } }).webClient.path).to.equal('/im/web');
  });

  it('needs more BOSH requests than held ones', () => {
    expect(problem({ bosh: { maxHold: 2, maxRequests: 2 } })).to.match(/maxRequests must be larger than maxHold/);
  });
});
