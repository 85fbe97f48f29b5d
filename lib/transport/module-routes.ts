// HTTP routes served by modules (`ctx.http.route`), e.g. XEP-0363 uploads. One table serves every
// http/https listener; the listeners consult it for paths they do not serve themselves.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RESERVED_HTTP_PATHS } from '../config/schema.js';

/**
 * Handles a request on a module's route. Returning `'pass'` (before writing anything) hands the
 * request to the next route with a matching prefix (another host's instance of the module), or
 * to a 404.
 */
export type HttpRouteHandler = (req: IncomingMessage, res: ServerResponse) => void | 'pass' | Promise<void | 'pass'>;

export interface HttpRouteSpec {
  /** Methods served, upper case (`GET`, `PUT`, `OPTIONS`, ...). HEAD is not implied. */
  methods: readonly string[];
  /** A path prefix starting and ending with `/` (e.g. `/upload/`); matched on the raw path. */
  pathPrefix: string;
}

interface Route extends HttpRouteSpec {
  host: string;
  module: string;
  handler: HttpRouteHandler;
}

export class ModuleHttpRoutes {
  private readonly routes: Route[] = [];
  private base: ((host: string) => string | undefined) | undefined;

  add(host: string, module: string, spec: HttpRouteSpec, handler: HttpRouteHandler): () => void {
    if (!spec.pathPrefix.startsWith('/') || !spec.pathPrefix.endsWith('/')) {
      throw new Error(`module ${module}: an http route prefix starts and ends with / (got ${spec.pathPrefix})`);
    }
    // The listener's own paths stay its own.
    if (RESERVED_HTTP_PATHS.some((r) => spec.pathPrefix === `${r.replace(/\/$/, '')}/` || spec.pathPrefix.startsWith(`${r}/`))) {
      throw new Error(`module ${module}: the http route prefix ${spec.pathPrefix} is one of the server's own paths`);
    }
    const route: Route = { ...spec, methods: spec.methods.map((m) => m.toUpperCase()), host, module, handler };
    this.routes.push(route);
    return () => {
      const i = this.routes.indexOf(route);
      if (i >= 0) this.routes.splice(i, 1);
    };
  }

  /** The routes whose prefix matches a path, in registration order. */
  match(path: string): readonly Route[] {
    return this.routes.filter((r) => path.startsWith(r.pathPrefix));
  }

  /** Set by the server once its listeners are up: the base URL (no trailing slash) for a host. */
  setBaseUrl(fn: (host: string) => string | undefined): void {
    this.base = fn;
  }

  baseUrl(host: string): string | undefined {
    return this.base?.(host);
  }
}
