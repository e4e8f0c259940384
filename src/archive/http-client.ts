import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';

/**
 * A small HTTP client for the archive: kept-alive connections and one DNS lookup per host.
 * Node's fetch resolves the name for every new connection, and this network's resolver
 * stalls 5 s on parallel queries: 241 HEADs took 40 s that way, a few seconds this way.
 */
export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

const resolved = new Map<string, Promise<{ address: string; family: number }>>();

const cachedLookup: LookupFunction = (hostname, options, callback) => {
  let pending = resolved.get(hostname);
  if (!pending) {
    pending = dns.promises.lookup(hostname, { family: options.family ?? 0 }).then((r) => ({ address: r.address, family: r.family }));
    pending.catch(() => resolved.delete(hostname)); // a failed lookup is retried next time
    resolved.set(hostname, pending);
  }
  pending.then(
    (r) => (options.all ? callback(null, [{ address: r.address, family: r.family }]) : callback(null, r.address, r.family)),
    (err: NodeJS.ErrnoException) => callback(err, '', 0),
  );
};

const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 16, lookup: cachedLookup }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 16, lookup: cachedLookup }),
};

export class HttpTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`no answer in ${Math.round(timeoutMs / 1000)} s`);
    this.name = 'HttpTimeoutError';
  }
}

/** GET or HEAD; redirects followed (a few); the body read whole (indexes are ~10 MB at most). */
export function request(url: string, options: { method?: 'GET' | 'HEAD'; timeoutMs: number; redirects?: number }): Promise<HttpResponse> {
  const target = new URL(url);
  const mod = target.protocol === 'https:' ? https : http;
  const agent = target.protocol === 'https:' ? agents['https:'] : agents['http:'];
  return new Promise<HttpResponse>((resolve, reject) => {
    const req = mod.request(target, { method: options.method ?? 'GET', agent, timeout: options.timeoutMs }, (res) => {
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (status >= 300 && status < 400 && location && (options.redirects ?? 5) > 0) {
        res.resume();
        request(new URL(location, target).toString(), { ...options, redirects: (options.redirects ?? 5) - 1 }).then(resolve, reject);
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    // one deadline for the whole exchange, not only idle time between packets
    const deadline = setTimeout(() => req.destroy(new HttpTimeoutError(options.timeoutMs)), options.timeoutMs);
    req.on('close', () => clearTimeout(deadline));
    req.on('timeout', () => req.destroy(new HttpTimeoutError(options.timeoutMs)));
    req.on('error', (err) => {
      clearTimeout(deadline);
      reject(err);
    });
    req.end();
  });
}

/** Lets the process exit: kept-alive sockets would hold it open otherwise. */
export function closeConnections(): void {
  agents['http:'].destroy();
  agents['https:'].destroy();
}
