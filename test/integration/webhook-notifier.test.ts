import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Queue } from 'bullmq';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { startPrivateRedis, type PrivateRedis } from '../../src/queue/private-redis.js';
import { closeConnection, connect } from '../../src/queue/redis-connection.js';
import { parseWebhookEvent, webhookEvent, type WebhookEvent } from '../../src/service/notify/webhook-event.js';
import { createWebhookNotifier, webhookQueueName, type WebhookNotifier, type WebhookNotifierOptions } from '../../src/service/notify/webhook-notifier.js';
import { verifyWebhookSignature } from '../../src/service/notify/webhook-signature.js';
import { tempDir } from '../helpers/kfarm-cli.js';

/**
 * The webhook notifier of `kfarm serve` against a real redis-server and a real HTTP receiver
 * on 127.0.0.1: signed deliveries, retries with backoff, a hanging receiver cut off per
 * attempt while notify() returns at once, one delivery per event id, a clean close.
 */
interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
  /** when the notifier's side of the connection went away */
  closedAt?: number;
}
type Answer = (n: number, res: http.ServerResponse) => void;

const secret = randomBytes(32).toString('hex');
let redis: PrivateRedis;
let secretFile: string;
let server: http.Server;
let url: string;
let received: Received[] = [];
let answer: Answer = (_n, res) => res.writeHead(204).end();
const open: WebhookNotifier[] = [];
let logLines: Array<{ level: number; msg: string; attempt?: number; err?: string; dropped?: number }> = [];
const logger = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(JSON.parse(line) as (typeof logLines)[number]) });

beforeAll(async () => {
  const dir = await tempDir('webhook');
  redis = await startPrivateRedis(dir, pino({ level: 'silent' }));
  secretFile = path.join(dir, 'webhook.secret');
  await writeFile(secretFile, `${secret}\n`, { mode: 0o600 });
  server = http.createServer((req, res) => {
    const entry: Received = { headers: req.headers, body: '', at: Date.now() };
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.socket.once('close', () => (entry.closedAt = Date.now()));
    req.on('end', () => {
      entry.body = Buffer.concat(chunks).toString('utf8');
      received.push(entry);
      answer(received.length, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/kfarm?token=receivers-own`;
}, 30_000);

afterEach(async () => {
  await Promise.all(open.splice(0).map((n) => n.close()));
  server.closeAllConnections();
  received = [];
  logLines = [];
  answer = (_n, res) => res.writeHead(204).end();
}, 30_000);

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await redis?.stop();
}, 30_000);

let queues = 0;
async function notifier(opts: Partial<WebhookNotifierOptions> = {}): Promise<WebhookNotifier> {
  const n = await createWebhookNotifier({
    url,
    secretFile,
    connection: redis.target,
    queueName: `test-webhook-${process.pid}-${++queues}`,
    logger,
    backoffMs: 50,
    ...opts,
  });
  open.push(n);
  return n;
}

function failure(kernel = '6.1.0-57-amd64'): WebhookEvent {
  return webhookEvent({
    type: 'new-failure',
    module: 'hello',
    version: '1.0',
    kernel,
    release: 'debian-12',
    arch: 'x86_64',
    flavour: 'amd64',
    verdict: 'failed',
    reason: 'make-failed',
    firstError: "hello.c:3:1: error: unknown type name 'foo'",
    buildId: 'b-1',
    reportPath: '/api/builds/b-1/report',
  });
}

async function waitFor(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`waited ${ms} ms for ${what}; received ${received.length}; log:\n${logLines.map((l) => `${l.msg} ${l.err ?? ''}`).join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** notify() timed: it must hand the event over and return, whatever the receiver does */
function timedNotify(n: WebhookNotifier, event: WebhookEvent): number {
  const start = performance.now();
  n.notify(event);
  return performance.now() - start;
}

describe('webhook notifier', () => {
  it('delivers the event as its JSON body, signed: the signature verifies with the secret, the secret is not in the body', async () => {
    const n = await notifier();
    const event = failure();
    n.notify(event);
    await waitFor('the delivery', () => received.length === 1);
    const [got] = received;
    expect(got!.headers['content-type']).toBe('application/json');
    expect(got!.headers['x-kfarm-event']).toBe('new-failure');
    expect(got!.headers['x-kfarm-delivery']).toBe(event.id);
    expect(parseWebhookEvent(got!.body)).toEqual(event);
    expect(got!.body).not.toContain(secret);
    expect(verifyWebhookSignature(secret, got!.headers, got!.body)).toMatchObject({ ok: true });
    expect(verifyWebhookSignature(`${secret}x`, got!.headers, got!.body)).toEqual({ ok: false, reason: 'bad-signature' });
    await waitFor('the delivered log line', () => logLines.some((l) => l.msg === 'webhook delivered'));
    // the receiver's path and query (its own secret) stay out of the log
    expect(JSON.stringify(logLines)).not.toContain('receivers-own');
  });

  it('retries a receiver that answers 500 twice: the third attempt delivers it, same delivery id, each attempt signed afresh', async () => {
    answer = (n, res) => (n <= 2 ? res.writeHead(500).end('not now') : res.writeHead(200).end());
    const n = await notifier();
    const event = failure();
    n.notify(event);
    await waitFor('three attempts', () => received.length === 3);
    await waitFor('the delivered log line', () => logLines.some((l) => l.msg === 'webhook delivered'));
    expect(received.map((r) => r.headers['x-kfarm-delivery'])).toEqual([event.id, event.id, event.id]);
    for (const r of received) expect(verifyWebhookSignature(secret, r.headers, r.body).ok).toBe(true);
    // exponential backoff from 50 ms: the second retry waits longer than the first
    expect(received[1]!.at - received[0]!.at).toBeGreaterThanOrEqual(45);
    expect(received[2]!.at - received[1]!.at).toBeGreaterThanOrEqual(95);
    expect(logLines.filter((l) => l.msg.startsWith('webhook attempt failed')).map((l) => [l.attempt, l.err])).toEqual([
      [1, expect.stringContaining('answered 500: not now')],
      [2, expect.stringContaining('answered 500')],
    ]);
    expect(logLines.find((l) => l.msg === 'webhook delivered')).toMatchObject({ attempt: 3 });
    await new Promise((r) => setTimeout(r, 300));
    expect(received).toHaveLength(3);
  });

  it('a receiver that never answers: notify() returns at once, each attempt is aborted after the timeout and retried, then dropped with an error', async () => {
    answer = () => undefined; // hangs
    const n = await notifier({ timeoutMs: 400, attempts: 3 });
    const took = [timedNotify(n, failure('6.1.0-57-amd64'))];
    await waitFor('the first attempt', () => received.length === 1);
    // while a delivery hangs, the callers (builds) go on
    took.push(timedNotify(n, failure('6.1.0-58-amd64')));
    await waitFor('three attempts of each event', () => received.length === 6 && received.every((r) => r.closedAt !== undefined), 15_000);
    expect(Math.max(...took)).toBeLessThan(50);
    for (const r of received) {
      const held = r.closedAt! - r.at;
      expect(held).toBeGreaterThanOrEqual(350);
      expect(held).toBeLessThan(2000);
    }
    await waitFor('both events given up', () => logLines.filter((l) => l.msg === 'webhook not delivered after 3 attempts: dropped').length === 2);
    expect(logLines.find((l) => l.msg.startsWith('webhook attempt failed'))?.err).toContain('no answer within 400 ms');
    console.log(`notify() took ${took.map((t) => t.toFixed(2)).join(', ')} ms; attempts held ${received.map((r) => r.closedAt! - r.at).join(', ')} ms`);
  });

  it('delivers an event notified twice (and again after its delivery) once', async () => {
    const n = await notifier({ concurrency: 1 });
    const event = failure();
    n.notify(event);
    n.notify(event);
    await waitFor('the delivery', () => received.length === 1);
    n.notify(event);
    // one worker, first in first out: once a later event is delivered, a duplicate would have been too
    const later = failure('6.1.0-58-amd64');
    n.notify(later);
    await waitFor('the later event', () => received.some((r) => r.headers['x-kfarm-delivery'] === later.id));
    await new Promise((r) => setTimeout(r, 200));
    expect(received.map((r) => r.headers['x-kfarm-delivery'])).toEqual([event.id, later.id]);
  });

  it('close() leaves no open handles, even with a delivery hanging (aborted after the grace)', async () => {
    await new Promise((r) => setTimeout(r, 200)); // what earlier tests and setup were closing
    const before = resourceCounts();
    const n = await notifier({ closeGraceMs: 200, timeoutMs: 30_000 });
    n.notify(failure());
    await waitFor('the delivery', () => received.length === 1);
    answer = () => undefined;
    n.notify(failure('6.1.0-58-amd64'));
    await waitFor('the hanging attempt', () => received.length === 2);
    const start = Date.now();
    await n.close();
    const closeMs = Date.now() - start;
    expect(closeMs).toBeLessThan(3000);
    await waitFor('the aborted attempt seen by the receiver', () => received[1]!.closedAt !== undefined);
    // sockets and timers close on the next turns of the event loop
    await new Promise((r) => setTimeout(r, 100));
    expect(resourceCounts()).toEqual(before);
    // and a notify after close neither throws nor queues
    expect(() => n.notify(failure('6.1.0-59-amd64'))).not.toThrow();
    expect(logLines.some((l) => l.msg === 'webhook event after close: dropped')).toBe(true);
    console.log(`close() with a hanging delivery took ${closeMs} ms`);
  });

  it('with Redis gone: notify() still returns at once, close() returns within seconds and leaves no open handles', async () => {
    await new Promise((r) => setTimeout(r, 200));
    const before = resourceCounts();
    const gone = await startPrivateRedis(await tempDir('webhook-gone'), pino({ level: 'silent' }));
    const n = await notifier({ connection: gone.target });
    n.notify(failure());
    await waitFor('the delivery', () => received.length === 1);
    await gone.stop();
    const took = timedNotify(n, failure('6.1.0-58-amd64'));
    expect(took).toBeLessThan(50);
    const start = Date.now();
    await n.close();
    const closeMs = Date.now() - start;
    expect(closeMs).toBeLessThan(10_000);
    expect(logLines.find((l) => l.msg.startsWith('webhook events not queued before close'))).toMatchObject({ dropped: 1 });
    // the event loop still turns (a BullMQ loop left spinning on a closed connection would starve it)
    const turned = Date.now();
    await new Promise((r) => setTimeout(r, 100));
    expect(Date.now() - turned).toBeLessThan(1000);
    // ioredis gives each connection that is not back 2 s to close its socket (a timer armed by
    // disconnect(); BullMQ's worker disconnects its blocking connection a little later than
    // close() returns): with Redis gone the process may stay a few seconds, then nothing is left
    const closedAt = Date.now();
    while (JSON.stringify(resourceCounts()) !== JSON.stringify(before) && Date.now() - closedAt < 8000) await new Promise((r) => setTimeout(r, 50));
    expect(resourceCounts()).toEqual(before);
    const lingered = Date.now() - closedAt;
    expect(lingered).toBeLessThan(6000);
    console.log(`with Redis gone: notify() took ${took.toFixed(2)} ms, close() ${closeMs} ms, its last timers ended ${lingered} ms later`);
  });

  it('sends nothing it did not queue itself: a job planted in Redis without the seal is refused, never signed', async () => {
    const queueName = `test-webhook-${process.pid}-planted`;
    const n = await notifier({ queueName });
    const planted = failure('6.6.6-evil-amd64');
    const plantedBody = JSON.stringify(planted);
    const connection = connect(redis.target);
    const queue = new Queue(webhookQueueName(queueName), { connection });
    try {
      await queue.add('new-failure', { type: 'new-failure', body: plantedBody }, { jobId: planted.id, attempts: 3 });
      await queue.add('new-failure', { type: 'new-failure', body: plantedBody, seal: 'f'.repeat(64) }, { jobId: `${planted.id}x`, attempts: 3 });
    } finally {
      await queue.close();
      closeConnection(connection);
    }
    await waitFor('both refusals', () => logLines.filter((l) => l.msg.startsWith('refused a webhook job')).length === 2);
    // and a real event after them is delivered: the refusals cost the receiver nothing
    const real = failure();
    n.notify(real);
    await waitFor('the real event', () => received.length === 1);
    expect(received.map((r) => r.headers['x-kfarm-delivery'])).toEqual([real.id]);
    expect(logLines.filter((l) => l.msg.startsWith('refused a webhook job'))).toHaveLength(2);
  });

  it('never throws into the caller: an event that cannot be serialised is logged and dropped', async () => {
    const n = await notifier();
    const bad = { ...failure(), firstError: 1n } as unknown as WebhookEvent;
    expect(() => n.notify(bad)).not.toThrow();
    expect(logLines.find((l) => l.msg === 'could not queue the webhook event: dropped')?.err).toMatch(/BigInt/);
  });

  it('refuses a URL that is not http(s) and a secret that is not in a readable file, before connecting', async () => {
    for (const bad of ['ftp://127.0.0.1/x', 'file:///etc/passwd', 'not a url']) {
      const err: unknown = await notifier({ url: bad }).catch((e: unknown) => e);
      expect(isKfarmError(err, 'BAD_OPTION'), `${bad}: ${String(err)}`).toBe(true);
    }
    const dir = await tempDir('webhook-bad');
    const short = path.join(dir, 'short');
    await writeFile(short, 'abc\n', { mode: 0o600 });
    for (const file of [path.join(dir, 'missing'), short]) {
      const err: unknown = await notifier({ secretFile: file }).catch((e: unknown) => e);
      expect(isKfarmError(err, 'BAD_OPTION'), `${file}: ${String(err)}`).toBe(true);
    }
  });
});

/** what keeps the process alive (sockets, timers, servers), by kind */
function resourceCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}
