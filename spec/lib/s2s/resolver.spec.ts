import { expect } from 'chai';
import { Resolver } from 'node:dns/promises';
import { orderSrv, S2sResolver, type SrvRecord } from '../../../lib/s2s/resolver.js';
import { FakeDns } from './fake-dns.js';

const srv = (name: string, priority: number, weight: number, port = 5269): SrvRecord => ({ name, priority, weight, port });

/** A deterministic "random" source. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

describe('SRV ordering (RFC 2782)', () => {
  it('orders by ascending priority first', () => {
    const out = orderSrv([srv('c', 30, 1), srv('a', 10, 1), srv('b', 20, 1)], sequence(0.5));
    expect(out.map((r) => r.name)).to.deep.equal(['a', 'b', 'c']);
  });

  it('picks within a priority by running sum of weights', () => {
    // Weights 10 and 90: a draw of 0.05 × 101 = 5 falls in the first, 0.5 × 101 = 50 in the second.
    const records = [srv('light', 0, 10), srv('heavy', 0, 90)];
    expect(orderSrv(records, sequence(0.05, 0)).map((r) => r.name)).to.deep.equal(['light', 'heavy']);
    expect(orderSrv(records, sequence(0.5, 0)).map((r) => r.name)).to.deep.equal(['heavy', 'light']);
  });

  it('follows the weights over many draws', () => {
    const records = [srv('one', 0, 1), srv('nine', 0, 9)];
    let heavyFirst = 0;
    for (let i = 0; i < 4000; i++) if (orderSrv(records)[0]!.name === 'nine') heavyFirst++;
    // 9/11 exactly: RFC 2782 draws from 0 to the sum inclusive.
    expect(heavyFirst / 4000).to.be.within(0.75, 0.9);
  });

  it('puts weight-0 records first in the running sum, so a zero draw picks them', () => {
    const out = orderSrv([srv('w5', 0, 5), srv('w0', 0, 0)], sequence(0));
    expect(out.map((r) => r.name)).to.deep.equal(['w0', 'w5']);
  });

  it('keeps every record exactly once', () => {
    const records = [srv('a', 1, 0), srv('b', 1, 3), srv('c', 0, 7), srv('d', 2, 0), srv('e', 1, 3)];
    const out = orderSrv(records);
    expect(out.map((r) => r.name).sort()).to.deep.equal(['a', 'b', 'c', 'd', 'e']);
    expect(out[0]!.name).to.equal('c');
    expect(out[4]!.name).to.equal('d');
  });
});

describe('S2sResolver', () => {
  let dns: FakeDns;
  let resolver: S2sResolver;

  before(async () => {
    dns = await FakeDns.start();
    const node = new Resolver({ timeout: 1000, tries: 1 });
    node.setServers([dns.address]);
    resolver = new S2sResolver({ dns: node, random: () => 0 });
  });
  after(() => dns.close());

  it('merges _xmpps-server (direct TLS) and _xmpp-server records by priority (XEP-0368)', async () => {
    dns.add('_xmpp-server._tcp.mixed.example', { type: 'SRV', priority: 10, weight: 0, port: 5269, target: 'starttls.mixed.example' });
    dns.add('_xmpps-server._tcp.mixed.example', { type: 'SRV', priority: 5, weight: 0, port: 5270, target: 'tls.mixed.example' });
    dns.add('_xmpp-server._tcp.mixed.example', { type: 'SRV', priority: 20, weight: 0, port: 5271, target: 'backup.mixed.example' });
    expect(await resolver.resolve('mixed.example')).to.deep.equal([
      { host: 'tls.mixed.example', port: 5270, directTls: true },
      { host: 'starttls.mixed.example', port: 5269, directTls: false },
      { host: 'backup.mixed.example', port: 5271, directTls: false },
    ]);
  });

  it('falls back to the domain on port 5269 when there are no SRV records (RFC 6120 §3.2.2)', async () => {
    expect(await resolver.resolve('plain.example')).to.deep.equal([{ host: 'plain.example', port: 5269, directTls: false }]);
  });

  it('honours "." as "no XMPP service here" without falling back', async () => {
    dns.add('_xmpp-server._tcp.noxmpp.example', { type: 'SRV', priority: 0, weight: 0, port: 0, target: '.' });
    expect(await resolver.resolve('noxmpp.example')).to.deep.equal([]);
  });

  it('treats "." for xmpps-server as "no direct TLS" and uses the xmpp-server records', async () => {
    dns.add('_xmpps-server._tcp.nodirect.example', { type: 'SRV', priority: 0, weight: 0, port: 0, target: '.' });
    dns.add('_xmpp-server._tcp.nodirect.example', { type: 'SRV', priority: 0, weight: 0, port: 5999, target: 'x.nodirect.example' });
    expect(await resolver.resolve('nodirect.example')).to.deep.equal([{ host: 'x.nodirect.example', port: 5999, directTls: false }]);
  });

  it('asks DNS nothing for an overridden domain, and connects to IP literals directly', async () => {
    const before = dns.queries.length;
    const r = new S2sResolver({ hosts: { 'Fixed.Example': { host: '127.0.0.1', port: 5270, directTls: false } }, dns: { resolveSrv: () => Promise.reject(new Error('no DNS')) } });
    expect(await r.resolve('fixed.example.')).to.deep.equal([{ host: '127.0.0.1', port: 5270, directTls: false }]);
    expect(await r.resolve('[::1]')).to.deep.equal([{ host: '::1', port: 5269, directTls: false }]);
    expect(await r.resolve('192.0.2.1')).to.deep.equal([{ host: '192.0.2.1', port: 5269, directTls: false }]);
    r.override('fixed.example', undefined);
    expect(await r.resolve('fixed.example')).to.deep.equal([{ host: 'fixed.example', port: 5269, directTls: false }]);
    expect(dns.queries.length).to.equal(before);
  });
});
