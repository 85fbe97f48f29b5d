import { expect } from 'chai';
import { ModuleHttpRoutes } from '../../../lib/transport/module-routes.js';

describe('module http routes (ctx.http)', () => {
  it('matches by prefix, in registration order, and removes a route', () => {
    const routes = new ModuleHttpRoutes();
    const a = () => 'pass' as const;
    const b = () => undefined;
    routes.add('a.example', 'upload', { methods: ['get', 'PUT'], pathPrefix: '/upload/' }, a);
    const removeB = routes.add('b.example', 'upload', { methods: ['GET'], pathPrefix: '/upload/' }, b);
    expect(routes.match('/upload/x/y').map((r) => r.host)).to.deep.equal(['a.example', 'b.example']);
    expect(routes.match('/upload/x/y')[0]!.methods).to.deep.equal(['GET', 'PUT']);
    expect(routes.match('/uploads/x')).to.have.length(0);
    removeB();
    expect(routes.match('/upload/x/y')).to.have.length(1);
  });

  it('refuses prefixes that are not /…/ or that take the listener\'s own paths', () => {
    const routes = new ModuleHttpRoutes();
    for (const pathPrefix of ['upload/', '/upload', '/', '/metrics/', '/http-bind/', '/.well-known/acme/']) {
      expect(() => routes.add('h', 'm', { methods: ['GET'], pathPrefix }, () => undefined), pathPrefix).to.throw();
    }
  });

  it('answers the base URL the server sets, per host', () => {
    const routes = new ModuleHttpRoutes();
    expect(routes.baseUrl('example.com')).to.equal(undefined);
    routes.setBaseUrl((host) => `http://${host}:5280`);
    expect(routes.baseUrl('example.com')).to.equal('http://example.com:5280');
  });
});
