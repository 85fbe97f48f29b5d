import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { downgradeProtectionHash } from '../../../lib/sasl/scram.js';
import type { SaslContext, TlsChannel } from '../../../lib/sasl/mechanism.js';

const tls: TlsChannel = { version: 'TLSv1.3', bindings: () => ['tls-unique', 'tls-exporter'], bindingData: () => Buffer.alloc(32) };
const base = (offered: string[] | undefined, t: TlsChannel | undefined = tls): SaslContext => ({
  host: 'localhost',
  tls: t,
  credentials: { scram: async () => { throw new Error('unused'); }, verifyPassword: async () => false },
  offered,
});

describe('XEP-0474 SASL SCRAM downgrade protection hash', () => {
  it('hashes the sorted mechanisms, then %x1F and the sorted channel bindings when -PLUS is offered', () => {
    const s = 'SCRAM-SHA-1\x1eSCRAM-SHA-256-PLUS\x1ftls-exporter\x1etls-unique';
    expect(downgradeProtectionHash(base(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1']), 'SHA-256')).to.equal(createHash('sha256').update(s).digest('base64'));
  });

  it('leaves out the channel bindings when no -PLUS mechanism is advertised, and uses the SCRAM hash', () => {
    expect(downgradeProtectionHash(base(['SCRAM-SHA-1', 'PLAIN']), 'SHA-1')).to.equal(createHash('sha1').update('PLAIN\x1eSCRAM-SHA-1').digest('base64'));
  });

  it('is absent when the advertised list is unknown (mechanism used outside a negotiator)', () => {
    expect(downgradeProtectionHash(base(undefined), 'SHA-256')).to.equal(undefined);
  });
});
