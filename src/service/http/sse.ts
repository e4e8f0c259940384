import type http from 'node:http';
import type { BuildFeed } from '../builds/build-feed.js';
import type { BuildRow } from '../farm-db.js';

/** a comment line now and then keeps proxies from closing a quiet stream */
const KEEPALIVE_MS = 15_000;

/**
 * A build's feed as server-sent events: what it holds after Last-Event-ID, then each event as it
 * comes, and the stream ends after `end`. A build with no feed in this process (it ended before
 * the service last started) gets its end from the database row.
 */
export function streamFeed(req: http.IncomingMessage, res: http.ServerResponse, feed: BuildFeed | undefined, build: BuildRow): void {
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
  const write = (id: number, type: string, data: unknown) => res.write(`id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
  if (!feed) {
    write(1, 'end', { state: build.state, exitCode: build.exitCode, summary: build.summary, error: build.error });
    res.end();
    return;
  }
  const after = Number(req.headers['last-event-id'] ?? 0) || 0;
  const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
  const stop = feed.follow(after, (e) => {
    write(e.id, e.type, e.data);
    if (e.type === 'end') {
      clearInterval(keepalive);
      res.end();
    }
  });
  res.on('close', () => {
    clearInterval(keepalive);
    stop();
  });
}
