import { Queue, QueueEvents, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { describeError } from '../errors/kfarm-error.js';
import { verifyJobId, verifyPayloadSchema, verifyQueueName, verifyResultSchema, VERIFY_LANES, type VerifyLane, type VerifyPayload, type VerifyResult } from '../verify/verify-job.js';
import { closeWorkers } from './build-queue.js';
import { seal, verifySeal } from './record-seal.js';
import { closeConnection, connect, rateLimited, type RedisTarget } from './redis-connection.js';

/**
 * Boots as BullMQ jobs (the build queue's rules: payload and result sealed with the farm key,
 * both checked against their schema), one queue per capability (verify/verify-job.ts routes).
 * A boot is never reused: its job is removed once its coordinator has the result.
 */
export type VerifyOutcome = { jobId: string; result: VerifyResult } | { jobId: string; error: string };

export class VerifyQueue {
  private readonly connection: Redis;
  private readonly eventsConnections: Redis[] = [];
  private readonly queues = new Map<VerifyLane, Queue>();
  private readonly events = new Map<VerifyLane, QueueEvents>();

  constructor(target: RedisTarget, readonly base: string, private readonly key: Buffer) {
    this.connection = connect(target);
    for (const lane of VERIFY_LANES) {
      const name = verifyQueueName(base, lane);
      const eventsConnection = connect(target);
      this.eventsConnections.push(eventsConnection);
      this.queues.set(lane, new Queue(name, { connection: this.connection, streams: { events: { maxLen: 2000 } } }));
      this.events.set(lane, new QueueEvents(name, { connection: eventsConnection }));
    }
  }

  async ready(): Promise<void> {
    for (const lane of VERIFY_LANES) {
      await this.lane(lane).queue.waitUntilReady();
      await this.lane(lane).events.waitUntilReady();
    }
  }

  private lane(lane: VerifyLane): { queue: Queue; events: QueueEvents } {
    const queue = this.queues.get(lane);
    const events = this.events.get(lane);
    if (!queue || !events) throw new Error(`no verify queue for ${lane}`);
    return { queue, events };
  }

  async submit(payload: VerifyPayload, lane: VerifyLane): Promise<string> {
    const jobId = verifyJobId(payload);
    await this.lane(lane).queue.add('verify', { payload, seal: seal(this.key, 'verify-payload', jobId, payload) }, {
      jobId,
      // infrastructure errors (an engine restarting) get 2+4 s to pass; a boot's own failure is its result
      attempts: 3,
      backoff: { type: 'exponential', delay: 2000 },
      removeOnComplete: { age: 3600, count: 20_000 },
      removeOnFail: { age: 24 * 3600 },
    });
    return jobId;
  }

  /** Waits for one boot; never throws for a failed job. A result whose seal or schema fails is an error. */
  async wait(jobId: string, lane: VerifyLane): Promise<VerifyOutcome> {
    const { queue, events } = this.lane(lane);
    const job = await queue.getJob(jobId);
    if (!job) return { jobId, error: 'the verify job disappeared from the queue' };
    let value: unknown;
    try {
      value = await job.waitUntilFinished(events);
    } catch (err) {
      return { jobId, error: describeError(err) };
    }
    await job.remove().catch(() => undefined);
    return { jobId, ...openVerifyResult(this.key, jobId, value) };
  }

  /** Removes boots nobody started (an interrupted verify). */
  async cancel(jobs: ReadonlyArray<{ jobId: string; lane: VerifyLane }>): Promise<void> {
    for (const { jobId, lane } of jobs) {
      const job = await this.lane(lane).queue.getJob(jobId);
      if (job && ['waiting', 'delayed', 'prioritized'].includes(await job.getState())) await job.remove().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    for (const lane of VERIFY_LANES) {
      await this.lane(lane).events.close().catch(() => undefined);
      await this.lane(lane).queue.close().catch(() => undefined);
    }
    this.eventsConnections.forEach(closeConnection);
    closeConnection(this.connection);
  }
}

/** A finished verify job's value: its result if the seal holds and the schema fits. */
export function openVerifyResult(key: Buffer, jobId: string, value: unknown): { result: VerifyResult } | { error: string } {
  const envelope = value !== null && typeof value === 'object' ? (value as { result?: unknown; seal?: unknown }) : {};
  if (!verifySeal(key, 'verify-result', jobId, envelope.result, envelope.seal)) {
    return { error: 'its result in Redis failed its integrity check (no valid seal of the farm key): refused' };
  }
  const parsed = verifyResultSchema.safeParse(envelope.result);
  return parsed.success ? { result: parsed.data } : { error: `the worker returned an unreadable verify result: ${parsed.error.message}` };
}

export type VerifyProcessor = (payload: VerifyPayload, job: { id: string; lane: VerifyLane }) => Promise<VerifyResult>;

export interface VerifyWorker {
  close(graceMs?: number): Promise<void>;
}

/** Consumes the given lanes' queues; `concurrency` per lane (the processor bounds the total). */
export async function startVerifyWorker(
  target: RedisTarget,
  base: string,
  lanes: readonly VerifyLane[],
  concurrency: number,
  process: VerifyProcessor,
  opts: { key: Buffer; logger: Logger },
): Promise<VerifyWorker> {
  const { key, logger } = opts;
  const connection = connect(target);
  const running = new Set<Promise<unknown>>();
  const logError = rateLimited(logger, 30_000);
  const workers = lanes.map((lane) => {
    const worker = new Worker(
      verifyQueueName(base, lane),
      (job: Job) => {
        const run = runJob(job, lane);
        running.add(run);
        return run.finally(() => running.delete(run));
      },
      { connection, concurrency, lockDuration: 30_000, stalledInterval: 15_000, maxStalledCount: 2 },
    );
    worker.on('error', (err) => logError(err, `verify worker: ${describeError(err)}`));
    return worker;
  });
  async function runJob(job: Job, lane: VerifyLane): Promise<{ result: VerifyResult; seal: string }> {
    const jobId = job.id ?? '';
    const data = (job.data ?? {}) as { payload?: unknown; seal?: unknown };
    if (!verifySeal(key, 'verify-payload', jobId, data.payload, data.seal)) {
      logger.error({ job: jobId.slice(0, 12) }, 'refused a verify job whose payload failed its integrity check (not sealed with this farm key)');
      throw new UnrecoverableError('the verify job payload failed its integrity check: it was not queued by a coordinator holding this farm key');
    }
    const payload = verifyPayloadSchema.safeParse(data.payload);
    if (!payload.success) throw new UnrecoverableError(`this worker does not understand the verify payload: ${payload.error.message}`);
    const result = await process(payload.data, { id: jobId, lane });
    return { result, seal: seal(key, 'verify-result', jobId, result) };
  }
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  return {
    close: (graceMs = 10_000) => closeWorkers(workers, running, connection, logger, graceMs, 'the verify worker'),
  };
}
