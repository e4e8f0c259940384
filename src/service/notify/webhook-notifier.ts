import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { KfarmError, describeError } from '../../errors/kfarm-error.js';
import { closeWorkers } from '../../queue/build-queue.js';
import { connect, rateLimited, type RedisTarget } from '../../queue/redis-connection.js';
import { settledWithin } from '../../util/settled-within.js';
import { serializeWebhookEvent, type WebhookEvent } from './webhook-event.js';
import { postWebhook } from './webhook-post.js';
import { webhookHeaders } from './webhook-signature.js';

export interface WebhookNotifierOptions {
  /** the receiver's http:// or https:// URL; anything else is refused at creation */
  url: string;
  /** a file holding the shared secret (one line, at least 16 bytes): never a command-line value, never sent or stored in Redis */
  secretFile: string;
  /** the farm's Redis (the queue lives there, so an event survives a restart until delivered) */
  connection: RedisTarget;
  /** the farm's queue name (KFARM_QUEUE); the webhook queue is `<queueName>-webhooks` */
  queueName: string;
  logger: Logger;
  /** how long one attempt may take, answer included, before it is aborted and retried. Default 10000 */
  timeoutMs?: number;
  /** attempts per event, the first included; then it is dropped with an error in the log. Default 8 */
  attempts?: number;
  /** the first retry's delay; each next one doubles it (8 attempts: 2 s ... 128 s, about 4 min in all). Default 2000 */
  backoffMs?: number;
  /** deliveries at once. Default 4 */
  concurrency?: number;
  /** how long close() lets deliveries in flight end before it aborts them (they are retried on the next start). Default 5000 */
  closeGraceMs?: number;
}

export interface WebhookNotifier {
  /**
   * Queues the event for delivery and returns at once: never throws, never waits for Redis or
   * the receiver (a build must not stall on a webhook). What goes wrong is logged. An event id
   * already queued or delivered (kept a day, the last 1000) is not delivered again.
   */
  notify(event: WebhookEvent): void;
  /** Stops taking events, lets deliveries in flight end (closeGraceMs), closes the connections. */
  close(): Promise<void>;
}

/** secrets shorter than this are typos or empty files */
const MIN_SECRET_BYTES = 16;
/** adds waiting for Redis at once: past this (Redis away for long) events are dropped, not heaped in memory */
const MAX_PENDING_ADDS = 1000;

export const webhookQueueName = (queueName: string): string => `${queueName}-webhooks`;

/**
 * The webhook of `kfarm serve` (issue 23): events go into a BullMQ queue (`<queue>-webhooks`,
 * job id = event id, so one event is delivered once) and a worker in the same process POSTs
 * them, signed (webhook-signature.ts), each attempt cut off after timeoutMs, retried with
 * exponential backoff until a 2xx. The queue holds only the body: the secret stays in this
 * process and the signature is made per attempt (its timestamp is the attempt's). Resolves
 * once its worker is connected to Redis.
 */
export async function createWebhookNotifier(options: WebhookNotifierOptions): Promise<WebhookNotifier> {
  const url = webhookUrl(options.url);
  const secret = readWebhookSecret(options.secretFile, options.logger);
  const { logger, timeoutMs = 10_000, attempts = 8, backoffMs = 2000, concurrency = 4, closeGraceMs = 5000 } = options;
  const log = logger.child({ webhook: url.origin });
  const name = webhookQueueName(options.queueName);
  const connection = connect(options.connection);
  const queue = new Queue(name, { connection });
  const jobOptions = {
    attempts,
    backoff: { type: 'exponential', delay: backoffMs },
    removeOnComplete: { age: 86_400, count: 1000 },
    removeOnFail: { age: 7 * 86_400, count: 1000 },
  };

  /** attempts in flight: close() aborts those still running after its grace */
  const inFlight = new Set<AbortController>();
  const running = new Set<Promise<unknown>>();
  const worker = new Worker(
    name,
    (job: Job) => {
      const run = deliver(job);
      running.add(run);
      return run.finally(() => running.delete(run));
    },
    {
      connection,
      concurrency,
      // an attempt holds its job at most timeoutMs: the lock must outlast it, or the job would
      // be taken as stalled and run twice
      lockDuration: timeoutMs + 30_000,
    },
  );
  async function deliver(job: Job): Promise<{ status: number }> {
    const { type, body, seal } = (job.data ?? {}) as { type?: unknown; body?: unknown; seal?: unknown };
    if (typeof type !== 'string' || typeof body !== 'string' || !sealMatches(secret, job.id ?? '', type, body, seal)) {
      log.error({ delivery: job.id }, 'refused a webhook job this notifier did not queue (its seal is wrong: someone wrote to Redis): not sent');
      throw new UnrecoverableError('the webhook job failed its integrity check: not queued by a notifier holding the webhook secret');
    }
    const controller = new AbortController();
    inFlight.add(controller);
    try {
      const headers = webhookHeaders({ secret, eventType: type, deliveryId: job.id ?? '', timestampSec: Math.floor(Date.now() / 1000), body });
      const delivered = await postWebhook(url, headers, body, { timeoutMs, signal: controller.signal });
      log.info({ event: type, delivery: job.id, attempt: job.attemptsMade + 1, status: delivered.status }, 'webhook delivered');
      return delivered;
    } finally {
      inFlight.delete(controller);
    }
  }
  worker.on('failed', (job, err) => {
    if (!job || err instanceof UnrecoverableError) return;
    const attempt = job.attemptsMade;
    const fields = { event: (job.data as { type?: string }).type, delivery: job.id, attempt, err: describeError(err) };
    if (attempt >= attempts) log.error(fields, `webhook not delivered after ${attempts} attempts: dropped`);
    else log.warn(fields, 'webhook attempt failed: retrying with backoff');
  });
  const logRedisError = rateLimited(log, 30_000);
  worker.on('error', (err) => logRedisError(err, `webhook worker: ${describeError(err)}`));
  queue.on('error', (err) => logRedisError(err, `webhook queue: ${describeError(err)}`));
  // closing a worker that is still connecting makes BullMQ emit an error nobody can catch
  await worker.waitUntilReady();

  const pending = new Set<Promise<void>>();
  let closed: Promise<void> | undefined;

  function notify(event: WebhookEvent): void {
    try {
      if (closed) {
        log.warn({ event: event.type, delivery: event.id }, 'webhook event after close: dropped');
        return;
      }
      if (pending.size >= MAX_PENDING_ADDS) {
        log.error({ event: event.type, delivery: event.id }, `webhook event dropped: ${pending.size} events already wait for Redis`);
        return;
      }
      const body = serializeWebhookEvent(event);
      const data = { type: event.type, body, seal: queueSeal(secret, event.id, event.type, body) };
      const added: Promise<void> = queue.add(event.type, data, { ...jobOptions, jobId: event.id }).then(
        () => undefined,
        (err: unknown) => log.error({ event: event.type, delivery: event.id, err: describeError(err) }, 'could not queue the webhook event: dropped'),
      );
      pending.add(added);
      void added.finally(() => pending.delete(added));
    } catch (err) {
      // a caller's bad event (not serialisable) must not fail the build that reported it
      log.error({ err: describeError(err) }, 'could not queue the webhook event: dropped');
    }
  }

  async function close(): Promise<void> {
    if (!(await settledWithin(Promise.allSettled([...pending]), 2000))) {
      log.warn({ dropped: pending.size }, 'webhook events not queued before close (Redis unreachable): dropped');
    }
    await settledWithin(queue.close(), 2000);
    // a receiver that hangs must not hold the shutdown: after the grace its attempt is aborted
    // and the event retried on the next start (receivers dedupe on X-Kfarm-Delivery)
    const abort = setTimeout(() => inFlight.forEach((c) => c.abort()), closeGraceMs);
    try {
      // closes the connection too (the queue's: it is shared), with Redis there or not
      await closeWorkers([worker], running, connection, log, closeGraceMs + 1000, 'the webhook notifier');
    } finally {
      clearTimeout(abort);
    }
  }

  return {
    notify,
    close: () => (closed ??= close()),
  };
}

/**
 * Redis is not trusted (docs/security.md): whoever can write to it must not get the farm to
 * sign a body of their own. A queued job carries an HMAC, under the webhook secret, of its id,
 * type and body (a context string of its own, so it never passes for a delivery signature),
 * and the worker sends only what it verifies.
 */
function queueSeal(secret: string, jobId: string, type: string, body: string): string {
  return createHmac('sha256', secret).update(`kfarm-webhook-queue-v1\n${jobId}\n${type}\n${body}`).digest('hex');
}

function sealMatches(secret: string, jobId: string, type: string, body: string, claimed: unknown): boolean {
  if (typeof claimed !== 'string' || !/^[0-9a-f]{64}$/.test(claimed)) return false;
  return timingSafeEqual(Buffer.from(queueSeal(secret, jobId, type, body), 'hex'), Buffer.from(claimed, 'hex'));
}

/** The receiver's URL, refused at creation unless http(s). */
export function webhookUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch (err) {
    throw new KfarmError('BAD_OPTION', `the webhook URL is not a URL: ${JSON.stringify(text.slice(0, 200))}`, {
      cause: err,
      hint: 'Give the receiver as http://host[:port]/path or https://host[:port]/path.',
    });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new KfarmError('BAD_OPTION', `the webhook URL must be http:// or https://, not ${url.protocol}//`, {
      context: { url: url.origin },
      hint: 'Give the receiver as http://host[:port]/path or https://host[:port]/path (https for anything off this host).',
    });
  }
  return url;
}

/**
 * The shared secret, from a file (a command-line value would show in `ps` and shell
 * history). Its text without surrounding whitespace, so `openssl rand -hex 32 > file` works.
 */
export function readWebhookSecret(file: string, logger: Logger): string {
  const hint = 'Make one: `openssl rand -hex 32 > webhook.secret && chmod 600 webhook.secret`, and give the receiver the same file.';
  let secret: string;
  try {
    secret = readFileSync(file, 'utf8').trim();
    const mode = statSync(file).mode & 0o777;
    if (mode & 0o077) logger.warn({ file, mode: mode.toString(8) }, 'the webhook secret file is readable by others: chmod 600 it');
  } catch (err) {
    throw new KfarmError('BAD_OPTION', `cannot read the webhook secret file ${file}: ${(err as NodeJS.ErrnoException).code ?? describeError(err)}`, { cause: err, hint });
  }
  if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
    throw new KfarmError('BAD_OPTION', `the webhook secret in ${file} is too short (${Buffer.byteLength(secret)} bytes, at least ${MIN_SECRET_BYTES})`, { hint });
  }
  return secret;
}
