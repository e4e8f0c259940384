import { open, readlink, realpath, stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { KfarmError } from '../errors/kfarm-error.js';

/**
 * A read-only static file server for a published repository (`kfarm publish --serve`): for
 * tests and small sites; any web server, object store or CDN serves the same directory.
 *
 * Only GET and HEAD. Nothing outside the directory is ever read: a request path with a `..` or
 * `.` segment (plain or percent-encoded), a NUL or a backslash is refused (403); symlinks are
 * followed (APT's `dists` is one, into `generations/`) only while they stay inside the
 * directory (403 otherwise), checked on the path the opened file descriptor really has, so a
 * link swapped between the check and the open cannot lead out. Directories are not listed.
 */
export interface StaticServer {
  /** http://host:port (the port the system gave when 0 was asked for) */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export interface ServeOptions {
  root: string;
  port: number;
  /** default 127.0.0.1: a repository is served to the world only when asked */
  host?: string;
  /** one line per request (method, path, status) */
  onRequest?: (line: string) => void;
}

const TYPES: Record<string, string> = {
  '.deb': 'application/vnd.debian.binary-package',
  '.udeb': 'application/vnd.debian.binary-package',
  '.rpm': 'application/x-rpm',
  '.xml': 'application/xml',
  '.gz': 'application/gzip',
  '.xz': 'application/x-xz',
  '.zst': 'application/zstd',
  '.bz2': 'application/x-bzip2',
  '.asc': 'application/pgp-signature',
  '.gpg': 'application/pgp-signature',
  '.sig': 'application/pgp-signature',
  '.json': 'application/json',
  '.repo': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.log': 'text/plain; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.tar': 'application/x-tar',
};

/** Pure: the Content-Type of a served file, by its name (APT's extensionless indexes are text). */
export function contentTypeOf(file: string): string {
  const base = path.basename(file);
  if (base === 'RPM-GPG-KEY-kfarm' || base.startsWith('RPM-GPG-KEY')) return 'application/pgp-keys';
  if (['Release', 'InRelease', 'Packages', 'Sources', 'Contents', 'Index', 'SHA256SUMS'].includes(base)) return 'text/plain; charset=utf-8';
  return TYPES[path.extname(base).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * Pure: a request target's path as segments below the root, or why it is refused. Each segment
 * is percent-decoded on its own, so `%2e%2e` and `%2f` cannot make a `..` or a separator.
 */
export function requestSegments(target: string): { segments: string[] } | { refused: string } {
  const pathname = target.split(/[?#]/, 1)[0] ?? '';
  if (!pathname.startsWith('/')) return { refused: 'not an absolute path' };
  const segments: string[] = [];
  for (const raw of pathname.split('/').slice(1)) {
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return { refused: 'bad percent-encoding' };
    }
    if (seg === '..' || seg === '.') return { refused: `a "${seg}" segment` };
    if (/[/\\\0]/.test(seg)) return { refused: 'a separator or NUL inside a segment' };
    if (seg !== '') segments.push(seg);
  }
  return { segments };
}

const inside = (root: string, p: string) => p === root || p.startsWith(`${root}${path.sep}`);

export async function serveStatic(options: ServeOptions): Promise<StaticServer> {
  let root: string;
  try {
    root = await realpath(path.resolve(options.root));
    if (!(await stat(root)).isDirectory()) throw new Error('not a directory');
  } catch (err) {
    throw new KfarmError('BAD_OPTION', `cannot serve ${options.root}: it is not a directory`, { context: { root: options.root }, cause: err });
  }
  const log = options.onRequest ?? (() => undefined);
  const server = http.createServer((req, res) => {
    const finish = (status: number, text?: string) => {
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...(status === 405 ? { Allow: 'GET, HEAD' } : {}) });
      res.end(req.method === 'HEAD' ? undefined : `${text ?? http.STATUS_CODES[status] ?? ''}\n`);
      log(`${req.method ?? '?'} ${req.url ?? ''} ${status}`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return finish(405);
    const parsed = requestSegments(req.url ?? '');
    if ('refused' in parsed) return finish(403, `refused: ${parsed.refused}`);
    void sendFile(root, parsed.segments, req, res).then(
      (status) => (status === 200 ? log(`${req.method} ${req.url ?? ''} 200`) : finish(status)),
      () => (res.headersSent ? res.destroy() : finish(500)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new KfarmError('BAD_OPTION', `cannot listen on ${options.host ?? '127.0.0.1'}:${options.port}: ${err.code ?? err.message}`, {
          context: { port: options.port },
          hint: err.code === 'EADDRINUSE' ? 'Another program uses that port: give another one (0 picks a free one).' : undefined,
          cause: err,
        }),
      ),
    );
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Sends root/segments, or returns the status to answer instead (200 when sent). The service's artifact downloads use it too. */
export async function sendFile(root: string, segments: string[], req: http.IncomingMessage, res: http.ServerResponse): Promise<number> {
  let real: string;
  try {
    real = await realpath(path.join(root, ...segments));
  } catch {
    return 404; // missing, or a dangling link
  }
  if (!inside(root, real)) return 403; // a symlink out of the directory
  const handle = await open(real, 'r').catch(() => undefined);
  if (!handle) return 404;
  try {
    // what was opened, not what was checked: a link swapped in between cannot lead out
    const opened = await readlink(`/proc/self/fd/${handle.fd}`).catch(() => real);
    if (!inside(root, opened)) return 403;
    const info = await handle.stat();
    if (!info.isFile()) return 404; // directories are not listed
    res.writeHead(200, { 'Content-Type': contentTypeOf(real), 'Content-Length': info.size, 'Last-Modified': info.mtime.toUTCString(), 'X-Content-Type-Options': 'nosniff' });
    if (req.method === 'HEAD') {
      res.end();
      return 200;
    }
    const stream = handle.createReadStream({ autoClose: false, start: 0 });
    await new Promise<void>((resolve, reject) => {
      stream.on('error', reject);
      res.on('close', resolve);
      stream.pipe(res);
    });
    return 200;
  } finally {
    await handle.close();
  }
}
