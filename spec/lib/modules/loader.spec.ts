import { expect } from 'chai';
import { z } from 'zod';
import { defineModule, type ModuleDefinition } from '../../../lib/modules/define.js';
import { orderModules, ModuleGraphError } from '../../../lib/modules/loader.js';
import { IqRegistry, IqOwnershipError } from '../../../lib/routing/iq-registry.js';
import { xml } from '../../../lib/xml/element.js';

type AnyModule = ModuleDefinition<z.ZodType, unknown>;
const mod = (name: string, requires: AnyModule[] = [], optional: AnyModule[] = []): AnyModule =>
  defineModule({ name, config: z.strictObject({}), requires, optional, setup: () => undefined }) as AnyModule;

describe('module loader', () => {
  it('boots dependencies before their dependants', () => {
    const pep = mod('pep');
    const bookmarks = mod('bookmarks', [pep]);
    const order = orderModules([{ def: bookmarks, options: {} }, { def: pep, options: {} }]).map((m) => m.def.name);
    expect(order).to.deep.equal(['pep', 'bookmarks']);
  });

  it('stops boot when a required module is disabled, naming both and the config key', () => {
    const pep = mod('pep');
    const bookmarks = mod('bookmarks', [pep]);
    expect(() => orderModules([{ def: bookmarks, options: {} }])).to.throw(ModuleGraphError, /bookmarks requires module pep.*modules\.pep/);
  });

  it('ignores a disabled optional dependency', () => {
    const mam = mod('mam');
    const carbons = mod('carbons', [], [mam]);
    expect(orderModules([{ def: carbons, options: {} }]).map((m) => m.def.name)).to.deep.equal(['carbons']);
  });

  it('refuses a dependency cycle', () => {
    const a = mod('a');
    const b = mod('b', [a]);
    (a as unknown as { requires: AnyModule[] }).requires = [b];
    expect(() => orderModules([{ def: a, options: {} }, { def: b, options: {} }])).to.throw(ModuleGraphError, /cycle/);
  });
});

describe('IqRegistry', () => {
  it('refuses a second owner for the same iq, naming both modules', () => {
    const r = new IqRegistry();
    r.register('one', 'get', { ns: 'urn:x', name: 'q', to: ['host'] }, () => undefined);
    expect(() => r.register('two', 'get', { ns: 'urn:x', name: 'q', to: ['host'] }, () => undefined)).to.throw(IqOwnershipError, /one and two/);
  });

  it('lets a bare-JID owner answer the account itself when no self owner exists', () => {
    const r = new IqRegistry();
    const h = () => undefined;
    r.register('vcard', 'get', { ns: 'vcard-temp', name: 'vCard', to: ['bare'] }, h);
    expect(r.find('self', 'get', xml('vCard', { xmlns: 'vcard-temp' }))).to.equal(h);
  });

  it('finds nothing for another element name in the same namespace', () => {
    const r = new IqRegistry();
    r.register('x', 'set', { ns: 'urn:x', name: 'q', to: ['host'] }, () => undefined);
    expect(r.find('host', 'set', xml('other', { xmlns: 'urn:x' }))).to.equal(undefined);
  });
});
