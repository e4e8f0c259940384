import { Queue, QueueEvents, Worker, UnrecoverableError, WaitingError, type Job } from 'bullmq';
import { isKfarmError } from '../errors/kfarm-error.js';
import type { Redis } from 'ioredis';
import { describeError } from '../errors/kfarm-error.js';
import { jobKey } from '../cache/job-key.js';
import { closeConnection, connect, type RedisTarget } from './redis-connection.js';
import { kernelRecordSchema, jobPayloadSchema, type JobPayload, type KernelRecord } from './job-payload.js';

/**
 * BullMQ, in every mode. The only module that imports bullmq. A job's id is its key
 * (cache/job-key.ts): the same work is queued once, and a finished, cacheable result is
 * reused by the next build that asks for it.
 */
export type JobUpdate =
  | { jobId: string; kind: 'active' }
  | { jobId: string; kind: 'progress'; phase: string }
  | { jobId: string; kind: 'retrying'; error: string };

export type JobOutcome = { jobId: string; record: KernelRecord; cached: boolean } | { jobId: string; error: string };

const DAY = 24 * 3600;

export class BuildQueue {
  readonly queue: Queue;
  private readonly events: QueueEvents;
  private readonly connection: Redis;
  private readonly eventsConnection: Redis;

  constructor(target: RedisTarget, readonly name: string) {
    this.connection = connect(target);
    this.eventsConnection = connect(target);
    this.queue = new Queue(name, { connection: this.connection });
    this.events = new QueueEvents(name, { connection: this.eventsConnection });
  }

  async ready(): Promise<void> {
    await this.queue.waitUntilReady();
    await this.events.waitUntilReady();
  }

  /** false when Redis has no such job (any more) */
  async has(jobId: string): Promise<boolean> {
    return (await this.queue.getJob(jobId)) !== undefined;
  }

  /** The connection the coordinator also uses for blobs. */
  get redis(): Redis {
    return this.connection;
  }

  /**
   * Queues a job unless the same job exists. Returns the cached record when the job already
   * finished with a reusable result (and reuse is allowed).
   */
  async submit(payload: JobPayload, reuse: (record: KernelRecord) => Promise<boolean>): Promise<{ jobId: string; cached: KernelRecord | undefined }> {
    const jobId = jobKey(payload);
    const existing = await this.queue.getJob(jobId);
    if (existing) {
      const state = await existing.getState();
      if (state === 'completed') {
        const parsed = kernelRecordSchema.safeParse(existing.returnvalue);
        if (parsed.success && parsed.data.cacheable && (await reuse(parsed.data))) return { jobId, cached: parsed.data };
        await existing.remove();
      } else if (state === 'failed') {
        await existing.remove();
      } else {
        return { jobId, cached: undefined }; // queued or running for someone else: share it
      }
    }
    await this.queue.add('build', payload, {
      jobId,
      // Infrastructure errors (an engine restarting, a lost connection) get 2+4+8+16 s to pass.
      attempts: 5,
      backoff: { type: 'exponential', delay: 2000 },
      removeOnComplete: { age: 7 * DAY },
      removeOnFail: { age: DAY },
    });
    return { jobId, cached: undefined };
  }

  /**
   * Waits for every job; reports progress, and each job's outcome, as they come. Never throws
   * for a failed job.
   */
  async waitAll(
    jobIds: readonly string[],
    onUpdate: (update: JobUpdate) => void,
    onOutcome: (outcome: JobOutcome) => Promise<void>,
  ): Promise<void> {
    const ours = new Set(jobIds);
    const onActive = ({ jobId }: { jobId: string }) => ours.has(jobId) && onUpdate({ jobId, kind: 'active' });
    const onProgress = ({ jobId, data }: { jobId: string; data: unknown }) =>
      ours.has(jobId) && onUpdate({ jobId, kind: 'progress', phase: typeof data === 'object' && data && 'phase' in data ? String((data as { phase: unknown }).phase) : String(data) });
    const onRetry = ({ jobId, failedReason }: { jobId: string; failedReason: string }) =>
      ours.has(jobId) && onUpdate({ jobId, kind: 'retrying', error: failedReason });
    this.events.on('active', onActive);
    this.events.on('progress', onProgress);
    this.events.on('failed', onRetry);
    try {
      await Promise.all(jobIds.map(async (jobId) => onOutcome(await this.outcomeOf(jobId))));
    } finally {
      this.events.off('active', onActive);
      this.events.off('progress', onProgress);
      this.events.off('failed', onRetry);
    }
  }

  private async outcomeOf(jobId: string): Promise<JobOutcome> {
    const job = await this.queue.getJob(jobId);
    if (!job) return { jobId, error: 'the job disappeared from the queue' };
    try {
      const value = await job.waitUntilFinished(this.events);
      const parsed = kernelRecordSchema.safeParse(value);
      return parsed.success ? { jobId, record: parsed.data, cached: false } : { jobId, error: `the worker returned an unreadable result: ${parsed.error.message}` };
    } catch (err) {
      return { jobId, error: describeError(err) };
    }
  }

  /**
   * Removes jobs nobody has started: what an interrupted or failed build leaves queued would
   * otherwise run before the next build's jobs. A running job (another host's worker has it)
   * is left to finish. Another build waiting on the same job queues it again (watchForLostJobs).
   */
  async cancel(jobIds: readonly string[]): Promise<number> {
    let removed = 0;
    for (const jobId of jobIds) {
      const job = await this.queue.getJob(jobId);
      if (!job || !['waiting', 'delayed', 'prioritized'].includes(await job.getState())) continue;
      if (await job.remove().then(() => true, () => false)) removed++;
    }
    return removed;
  }

  async workerCount(): Promise<number> {
    return (await this.queue.getWorkers()).length;
  }

  /** BullMQ leaves connections it was given open: close them too, or the process never exits. */
  async close(): Promise<void> {
    await this.events.close().catch(() => undefined);
    await this.queue.close().catch(() => undefined);
    closeConnection(this.eventsConnection);
    closeConnection(this.connection);
  }
}

export type Processor = (payload: JobPayload, job: { id: string; attempt: number; progress: (phase: string) => Promise<void> }) => Promise<KernelRecord>;

export interface BuildWorker {
  /**
   * Lets running jobs end (an interrupted one goes back to the queue at once), for at most
   * graceMs, then stops hard; a job still held then comes back through stall detection.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * Runs jobs from the queue. Infrastructure errors are retried by BullMQ with backoff. Resolves
 * once the worker's connection is up: closing one that is still connecting makes BullMQ emit
 * an error nobody can catch.
 */
export async function startBuildWorker(target: RedisTarget, name: string, concurrency: number, process: Processor): Promise<BuildWorker> {
  const connection = connect(target);
  const worker = new Worker(
    name,
    async (job: Job, token?: string) => {
      const payload = jobPayloadSchema.safeParse(job.data);
      if (!payload.success) {
        throw new UnrecoverableError(`this worker does not understand the job payload: ${payload.error.message}`);
      }
      try {
        return await process(payload.data, {
          id: job.id ?? '',
          attempt: job.attemptsMade + 1,
          progress: (phase) => job.updateProgress({ phase }),
        });
      } catch (err) {
        // This worker is stopping, not the build failing: hand the job to another worker now,
        // without spending one of its attempts.
        if (isKfarmError(err, 'INTERRUPTED')) {
          await job.moveToWait(token);
          throw new WaitingError();
        }
        throw err;
      }
    },
    {
      connection,
      concurrency,
      // A killed worker's job goes back to the queue after this long without a lock renewal.
      lockDuration: 30_000,
      stalledInterval: 15_000,
      maxStalledCount: 2,
    },
  );
  worker.on('error', () => undefined); // connection trouble: ioredis reconnects by itself
  await worker.waitUntilReady();
  return {
    close: async (graceMs = 10_000) => {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), graceMs);
      });
      const ended = await Promise.race([worker.close().then(() => 'ok' as const, () => 'ok' as const), deadline]);
      clearTimeout(timer);
      if (ended === 'late') await worker.close(true).catch(() => undefined);
      closeConnection(connection);
    },
  };
}

