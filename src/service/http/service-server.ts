import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { KfarmError } from '../../errors/kfarm-error.js';
import { authorize } from './auth.js';
import { HttpError, httpErrorOf } from './http-error.js';
import { openApiDocument } from './openapi.js';
import type { ServiceDeps } from './service-deps.js';
import type { Route } from './route.js';
import { ROUTES } from './service-routes.js';

export interface ListenOptions {
  /** default 127.0.0.1: the API reaches the network only when asked (and then behind TLS) */
  host?: string;
  port: number;
  /** PEM certificate chain and key: HTTPS on this port */
  tls?: { cert: Buffer; key: Buffer };
}

export interface ServiceServer {
  url: string;
  close(): Promise<void>;
}

interface Matched {
  route: Route;
  params: Record<string, string>;
}

/** Pure: the route for a method and path, its {params} decoded; `methods` lists what the path allows when the method does not match. */
export function matchRoute(routes: readonly Route[], method: string, pathname: string): Matched | { methods: string[] } | undefined {
  const segments = pathname.split('/');
  const allowed: string[] = [];
  for (const route of routes) {
    const pattern = route.path.split('/');
    const last = pattern[pattern.length - 1];
    // {path} as the last segment takes the rest (an artifact's path below the out dir)
    const rest = last === '{path}';
    if (rest ? segments.length < pattern.length : segments.length !== pattern.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < pattern.length && ok; i++) {
      const p = pattern[i] ?? '';
      const m = /^\{(\w+)\}$/.exec(p);
      if (!m) ok = p === segments[i];
      else {
        const raw = rest && i === pattern.length - 1 ? segments.slice(i).join('/') : (segments[i] ?? '');
        try {
          params[m[1] ?? ''] = rest && i === pattern.length - 1 ? raw.split('/').map(decodeURIComponent).join('/') : decodeURIComponent(raw);
        } catch {
          ok = false;
        }
        if (params[m[1] ?? ''] === '') ok = false;
      }
    }
    if (!ok) continue;
    if (route.method === method || (method === 'HEAD' && route.method === 'GET')) return { route, params };
    allowed.push(route.method);
  }
  return allowed.length > 0 ? { methods: allowed } : undefined;
}

/**
 * The HTTP API of `kfarm serve`: JSON in and out, a token on everything but health and the
 * OpenAPI document, one line of log per request. Errors are `{ error, code, hint }` with the
 * status their cause deserves (http-error.ts); a handler's bug is a 500 that says so.
 */
export async function startServiceServer(deps: ServiceDeps, listen: ListenOptions): Promise<ServiceServer> {
  const document = JSON.stringify(openApiDocument(ROUTES));
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const started = Date.now();
    const url = new URL(req.url ?? '/', 'http://service.invalid');
    const method = req.method ?? 'GET';
    const done = (status: number) => deps.logger.info({ method, path: url.pathname, status, ms: Date.now() - started }, 'request');
    const sendJson = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      if (res.headersSent) return res.destroy();
      const text = body === undefined ? '' : JSON.stringify(body);
      // the dashboard's model is megabytes of repetitive JSON (2.3 MB, 57 KB gzipped, for 5,400 cells)
      const gzip = text.length > 4096 && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
      const payload = gzip ? gzipSync(text) : text;
      res.writeHead(status, {
        ...(text ? { 'Content-Type': 'application/json; charset=utf-8' } : {}),
        ...(gzip ? { 'Content-Encoding': 'gzip', Vary: 'Accept-Encoding' } : {}),
        'Cache-Control': 'no-store',
        ...headers,
      });
      res.end(method === 'HEAD' ? undefined : payload);
      done(status);
    };
    const fail = (err: unknown) => {
      const e = httpErrorOf(err, deps.exitCodeFor);
      if (e.status >= 500) deps.logger.error({ err: err instanceof Error ? err.message : String(err), path: url.pathname }, 'request failed');
      sendJson(e.status, { error: e.message, ...(e.code ? { code: e.code } : {}), ...(e.hint ? { hint: e.hint } : {}) }, e.status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {});
    };
    if (url.pathname === '/api/v1/openapi.json' && (method === 'GET' || method === 'HEAD')) {
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' });
      res.end(method === 'HEAD' ? undefined : document);
      return done(200);
    }
    const matched = matchRoute(ROUTES, method, url.pathname);
    if (!matched) return fail(new HttpError(404, `no such API path: ${url.pathname.slice(0, 200)}`, 'GET /api/v1/openapi.json lists them.'));
    if ('methods' in matched) return sendJson(405, { error: `${method} is not allowed here` }, { Allow: matched.methods.join(', ') });
    void (async () => {
      if (matched.route.scope) authorize(deps.db, req, matched.route.scope);
      const reply = await matched.route.handle({ req, res, params: matched.params, query: url.searchParams, deps });
      if (reply === 'sent') done(res.statusCode);
      else sendJson(reply.status, reply.body);
    })().catch(fail);
  };
  const server = listen.tls ? https.createServer({ cert: listen.tls.cert, key: listen.tls.key }, handler) : http.createServer(handler);
  // an upload that stalls is cut by readBody; a client that never sends its headers, here
  server.headersTimeout = 30_000;
  server.requestTimeout = 0; // SSE streams and large uploads last; readBody bounds silence instead
  const host = listen.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new KfarmError('BAD_OPTION', `kfarm serve cannot listen on ${host}:${listen.port}: ${err.code ?? err.message}`, {
          context: { port: listen.port },
          hint: err.code === 'EADDRINUSE' ? 'Another program (or kfarm serve) uses that port: stop it or give --listen another.' : undefined,
          cause: err,
        }),
      ),
    );
    server.listen(listen.port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `${listen.tls ? 'https' : 'http'}://${shownHost}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
