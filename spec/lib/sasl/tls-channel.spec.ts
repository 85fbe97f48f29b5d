// The TLS channel of a stream lists its channel bindings without computing the TLS 1.3 exporter
// (RFC 9266): the keying material is exported only when an exchange binds to it.
import { expect } from 'chai';
import * as tls from 'node:tls';
import { tlsChannelOf } from '../../../lib/sasl/mechanism.js';
import { rsaCert, tlsPair } from './tls-fixture.js';

describe('TLS channel bindings', function () {
  this.timeout(20_000);

  it('lists tls-exporter on TLS 1.3 without exporting keying material until asked', async () => {
    const pair = await tlsPair(rsaCert('sha256'), 'TLSv1.3');
    const original = tls.TLSSocket.prototype.exportKeyingMaterial;
    let exports = 0;
    tls.TLSSocket.prototype.exportKeyingMaterial = function (this: tls.TLSSocket, ...args: Parameters<typeof original>) {
      exports++;
      return original.apply(this, args);
    };
    try {
      const channel = tlsChannelOf(pair.server);
      expect(channel.bindings()).to.deep.equal(['tls-exporter', 'tls-server-end-point']);
      expect(exports).to.equal(0);
      const data = channel.bindingData('tls-exporter');
      expect(data).to.deep.equal(pair.client.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0)));
      expect(exports).to.equal(2); // the server's, then the client's for comparison
    } finally {
      tls.TLSSocket.prototype.exportKeyingMaterial = original;
      await pair.close();
    }
  });

  it('lists no tls-exporter on TLS 1.2', async () => {
    const pair = await tlsPair(rsaCert('sha256'), 'TLSv1.2');
    try {
      const channel = tlsChannelOf(pair.server);
      expect(channel.bindings()).to.deep.equal(['tls-unique', 'tls-server-end-point']);
      expect(channel.bindingData('tls-exporter')).to.equal(undefined);
    } finally {
      await pair.close();
    }
  });
});
