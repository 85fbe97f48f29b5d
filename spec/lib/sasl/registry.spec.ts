import { expect } from 'chai';
import type { SaslMechanism } from '../../../lib/sasl/mechanism.js';
import { MechanismRegistry, defaultMechanisms } from '../../../lib/sasl/registry.js';

const dummy = (name: string): SaslMechanism => ({
  name,
  available: () => true,
  create: () => {
    throw new Error('unused');
  },
});

describe('SASL mechanism registry', () => {
  it('lists the built-in mechanisms strongest first', () => {
    expect(defaultMechanisms().map((m) => m.name)).to.deep.equal([
      'SCRAM-SHA-512-PLUS',
      'SCRAM-SHA-256-PLUS',
      'SCRAM-SHA-1-PLUS',
      'SCRAM-SHA-512',
      'SCRAM-SHA-256',
      'SCRAM-SHA-1',
      'PLAIN',
    ]);
  });

  it('registers more mechanisms at the end, or before or after a named one', () => {
    const reg = new MechanismRegistry();
    reg.register(dummy('EXTERNAL'), { before: 'SCRAM-SHA-512-PLUS' });
    reg.register(dummy('HT-SHA-256-NONE'), { after: 'SCRAM-SHA-1-PLUS' });
    reg.register(dummy('X-LAST'));
    const names = reg.list().map((m) => m.name);
    expect(names[0]).to.equal('EXTERNAL');
    expect(names.indexOf('HT-SHA-256-NONE')).to.equal(names.indexOf('SCRAM-SHA-1-PLUS') + 1);
    expect(names.at(-1)).to.equal('X-LAST');
  });

  it('refuses a second mechanism of the same name', () => {
    const reg = new MechanismRegistry();
    expect(() => reg.register(dummy('PLAIN'))).to.throw(/PLAIN is already registered/);
  });

  it('unregisters a mechanism by name', () => {
    const reg = new MechanismRegistry();
    expect(reg.unregister('PLAIN')).to.equal(true);
    expect(reg.get('PLAIN')).to.equal(undefined);
    expect(reg.unregister('PLAIN')).to.equal(false);
  });
});
