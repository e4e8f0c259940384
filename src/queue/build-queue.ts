import { DelayedError, Queue, QueueEvents, Worker, UnrecoverableError, WaitingError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import os from 'node:os';
import type { Logger } from 'pino';
import { z } from 'zod';
import { jobKey } from '../job/job-key.js';
import { describeError, isKfarmError } from '../errors/kfarm-error.js';
import { settledWithin } from '../util/settled-within.js';
import { BLOB_PREFIX, BlobStore } from './blob-store.js';
import { holderIsGone, holderName } from './job-holder.js';
import { kernelRecordSchema, jobPayloadSchema, type Artifact, type JobPayload, type KernelRecord } from '../job/job-payload.js';
import { seal, verifySeal } from './record-seal.js';
import { closeConnection, connect, rateLimited, type RedisTarget } from './redis-connection.js';

/**
 * BullMQ, in every mode. With verify-queue.ts (boots), the only module that imports bullmq. A job's id is its key
 * (job/job-key.ts): the same work is queued once, and a finished, cacheable result is
 * reused by the next build that asks for it.
 *
 * Redis is not trusted: a job's data is `{ payload, seal }` and a finished job's value
 * `{ record, seal }`, each sealed with the farm key (record-seal.ts) by who wrote it. A worker
 * refuses a payload whose seal fails; the coordinator never uses a record whose seal fails.
 */
export type JobUpdate = { jobId: string; kind: 'active' } | { jobId: string; kind: 'progress'; phase: string } | { jobId: string; kind: 'retrying'; error: string };

/** What the last failed attempt left: its log (a blob) and the error's hint. */
export interface AttemptTrace {
  attempt: number;
  hint?: string | undefined;
  log?: Artifact | undefined;
}

export type JobOutcome =
  | { jobId: string; record: KernelRecord; cached: boolean }
  | { jobId: string; error: string; last?: AttemptTrace | undefined }
  /** a finished job whose result failed its integrity check: never used */
  | { jobId: string; distrusted: string };

/** A job log line that points at an attempt's trace (job.log): `kfarm-attempt <json>`. */
const ATTEMPT_TAG = 'kfarm-attempt ';
const attemptSchema = z.object({
  attempt: z.number().int().positive(),
  hint: z.string().max(4096).optional(),
  log: z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), size: z.number().int().nonnegative() }).optional(),
  seal: z.string(),
});

const DAY = 24 * 3600;

/** Finished jobs kept in Redis at most (the newest): more than one matrix's jobs. */
const COMPLETED_KEPT = 20_000;

export class BuildQueue {
  readonly queue: Queue;
  private readonly events: QueueEvents;
  private readonly connection: Redis;
  private readonly eventsConnection: Redis;

  /** `key` seals payloads and checks results; without it the queue can only be inspected. */
  constructor(
    private readonly target: RedisTarget,
    readonly name: string,
    private readonly key?: Buffer,
  ) {
    this.connection = connect(target);
    this.eventsConnection = connect(target);
    // the event stream is capped too (BullMQ's default keeps 10,000 events): memory stays flat
    this.queue = new Queue(name, { connection: this.connection, streams: { events: { maxLen: 2000 } } });
    // job.waitUntilFinished adds a 'closing' listener to the queue per waited job, and a build waits
    // for all of its jobs at once: thousands of listeners are the design, not a leak
    this.queue.setMaxListeners(0);
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

  private get sealKey(): Buffer {
    if (!this.key) throw new Error('BuildQueue: no farm key given, cannot queue or read results');
    return this.key;
  }

  /**
   * Queues a job unless the same job exists. Returns the cached record when the job already
   * finished with a reusable result (and reuse is allowed). A finished job whose result fails
   * its integrity check is removed and queued again; `distrusted` says why. `priority`: BullMQ's,
   * 1 first (job-priority.ts); unset, the job runs before every prioritized one.
   */
  async submit(
    payload: JobPayload,
    reuse: (record: KernelRecord) => Promise<boolean>,
    priority?: number,
  ): Promise<{ jobId: string; cached: KernelRecord | undefined; distrusted?: string | undefined }> {
    const jobId = jobKey(payload);
    const existing = await this.queue.getJob(jobId);
    let distrusted: string | undefined;
    if (existing) {
      const state = await existing.getState();
      if (state === 'completed') {
        const opened = this.openResult(jobId, existing.returnvalue);
        if ('record' in opened && opened.record.cacheable && (await reuse(opened.record))) return { jobId, cached: opened.record };
        if ('distrusted' in opened) distrusted = opened.distrusted;
        await existing.remove();
      } else if (state === 'failed') {
        await existing.remove();
      } else if (!(state === 'active' && (await this.takeOverFromGone(existing)))) {
        return { jobId, cached: undefined }; // queued or running for someone else: share it
      }
    }
    await this.queue.add(
      'build',
      { payload, seal: seal(this.sealKey, 'payload', jobId, payload) },
      {
        jobId,
        ...(priority !== undefined ? { priority } : {}),
        // Infrastructure errors (an engine restarting, a lost connection) get 2+4+8+16 s to pass.
        attempts: 5,
        backoff: { type: 'exponential', delay: 2000 },
        // Redis is not the cache (the coordinator's store on disk is): a finished job stays only
        // for whoever shares it, and its blobs expire once fetched; memory stays bounded (a record
        // is a few KB). The count must outlast a big matrix's fast finishers (exclusions, cache
        // hits) until its coordinator reads them: with 200, 10,000 quick jobs lost 80% of their
        // results as "disappeared" (bench/coordinator-scale.ts).
        removeOnComplete: { age: 3600, count: COMPLETED_KEPT },
        removeOnFail: { age: DAY },
      },
    );
    return { jobId, cached: undefined, distrusted };
  }

  /**
   * A running job whose worker was a process of this host that is gone (a build killed with
   * SIGKILL): its lock would hold it for up to 30 s and stall detection take 15 s more, so it is
   * removed now and queued again. Only on a private Redis (a unix socket: every worker on this
   * host); a remote farm's stalled jobs come back through stall detection. job-holder.ts.
   */
  private async takeOverFromGone(job: Job): Promise<boolean> {
    if (!('socket' in this.target) || !holderIsGone(job.processedBy, os.hostname())) return false;
    await this.connection.del(this.queue.toKey(`${job.id ?? ''}:lock`));
    // a worker that took it meanwhile holds a new lock: then it is shared like any running job
    return job.remove().then(
      () => true,
      () => false,
    );
  }

  /** A finished job's value: its record if the seal holds and the schema fits. */
  private openResult(jobId: string, value: unknown): { record: KernelRecord } | { distrusted: string } | { error: string } {
    const envelope = value !== null && typeof value === 'object' ? (value as { record?: unknown; seal?: unknown }) : {};
    if (!verifySeal(this.sealKey, 'record', jobId, envelope.record, envelope.seal)) {
      return { distrusted: 'its result in Redis failed its integrity check (no valid seal of the farm key)' };
    }
    const parsed = kernelRecordSchema.safeParse(envelope.record);
    return parsed.success ? { record: parsed.data } : { error: `the worker returned an unreadable result: ${parsed.error.message}` };
  }

  /** The newest attempt trace a worker sealed for this job, if any. */
  private async lastAttempt(jobId: string): Promise<AttemptTrace | undefined> {
    const { logs } = await this.queue.getJobLogs(jobId, 0, -1, false);
    for (const line of logs) {
      if (!line.startsWith(ATTEMPT_TAG)) continue;
      try {
        const parsed = attemptSchema.safeParse(JSON.parse(line.slice(ATTEMPT_TAG.length)));
        if (!parsed.success) continue;
        const { seal: claimed, ...trace } = parsed.data;
        if (verifySeal(this.sealKey, 'attempt', jobId, trace, claimed)) return trace;
      } catch {
        // not JSON: not ours
      }
    }
    return undefined;
  }

  /**
   * Waits for every job; reports progress, and each job's outcome, as they come. Never throws
   * for a failed job.
   */
  async waitAll(jobIds: readonly string[], onUpdate: (update: JobUpdate) => void, onOutcome: (outcome: JobOutcome) => Promise<void>): Promise<void> {
    const ours = new Set(jobIds);
    const onActive = ({ jobId }: { jobId: string }) => ours.has(jobId) && onUpdate({ jobId, kind: 'active' });
    const onProgress = ({ jobId, data }: { jobId: string; data: unknown }) =>
      ours.has(jobId) && onUpdate({ jobId, kind: 'progress', phase: typeof data === 'object' && data && 'phase' in data ? String(data.phase) : String(data) });
    const onRetry = ({ jobId, failedReason }: { jobId: string; failedReason: string }) => ours.has(jobId) && onUpdate({ jobId, kind: 'retrying', error: failedReason });
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
    let value: unknown;
    try {
      value = await job.waitUntilFinished(this.events);
    } catch (err) {
      const last = await this.lastAttempt(jobId).catch(() => undefined);
      return { jobId, error: describeError(err), last };
    }
    const opened = this.openResult(jobId, value);
    return 'record' in opened ? { jobId, record: opened.record, cached: false } : { jobId, ...opened };
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
      if (
        await job.remove().then(
          () => true,
          () => false,
        )
      )
        removed++;
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
export async function startBuildWorker(target: RedisTarget, name: string, concurrency: number, process: Processor, opts: { key: Buffer; logger: Logger }): Promise<BuildWorker> {
  const { key, logger } = opts;
  const connection = connect(target);
  const blobs = new BlobStore(connection, BLOB_PREFIX);
  /** jobs in this process right now: close() waits for them, not for BullMQ's loop */
  const running = new Set<Promise<unknown>>();
  const worker = new Worker(
    name,
    (job: Job, token?: string) => {
      const run = runJob(job, token);
      running.add(run);
      return run.finally(() => running.delete(run));
    },
    {
      connection,
      concurrency,
      // kept on each job it runs (processedBy): a rerun on this host sees when this process is gone
      name: holderName(os.hostname()),
      // A killed worker's job goes back to the queue after this long without a lock renewal.
      lockDuration: 30_000,
      stalledInterval: 15_000,
      maxStalledCount: 2,
    },
  );
  async function runJob(job: Job, token: string | undefined): Promise<{ record: KernelRecord; seal: string }> {
    const jobId = job.id ?? '';
    const data = (job.data ?? {}) as { payload?: unknown; seal?: unknown };
    if (!verifySeal(key, 'payload', jobId, data.payload, data.seal)) {
      logger.error({ job: jobId.slice(0, 12) }, 'refused a job whose payload failed its integrity check (not sealed with this farm key)');
      throw new UnrecoverableError(
        'the job payload failed its integrity check: it was not queued by a coordinator holding this farm key (KFARM_FARM_KEY_FILE must be the same file on every host)',
      );
    }
    const payload = jobPayloadSchema.safeParse(data.payload);
    if (!payload.success) {
      throw new UnrecoverableError(`this worker does not understand the job payload: ${payload.error.message}`);
    }
    const attempt = job.attemptsMade + 1;
    try {
      const record = await process(payload.data, { id: jobId, attempt, progress: (phase) => job.updateProgress({ phase }) });
      return { record, seal: seal(key, 'record', jobId, record) };
    } catch (err) {
      // This worker is stopping, not the build failing: hand the job to another worker now,
      // without spending one of its attempts. Bounded: with Redis gone it would wait forever
      // (the job then comes back through stall detection).
      if (isKfarmError(err, 'INTERRUPTED')) {
        await settledWithin(job.moveToWait(token), 2000);
        throw new WaitingError();
      }
      // Not this worker's image (a host without the kernel, or with another build of it): pass
      // the job on for a while without spending an attempt, so the worker that holds it gets it.
      // A job no worker can take runs out of passes and then spends its attempts as any
      // infrastructure error does, ending as worker-error with the hint.
      if ((isKfarmError(err, 'IMAGE_NOT_FOUND') || isKfarmError(err, 'IMAGE_MISMATCH')) && (await passOn(connection, job, token))) {
        logger.info({ job: jobId.slice(0, 12), err: describeError(err) }, 'passed the job on: this worker does not hold its image');
        throw new DelayedError();
      }
      const traced = traceAttempt(job, attempt, err, { key, blobs, logger }).catch((e: unknown) =>
        logger.warn({ err: describeError(e) }, "could not keep the failed attempt's log"),
      );
      await settledWithin(traced, 5000);
      throw err;
    }
  }
  // Connection trouble: ioredis reconnects by itself, but the user must be able to see why.
  const logError = rateLimited(logger, 30_000);
  worker.on('error', (err) => logError(err, `worker: ${describeError(err)}`));
  await worker.waitUntilReady();
  return {
    close: (graceMs = 10_000) => closeWorkers([worker], running, connection, logger, graceMs, 'the worker'),
  };
}

/** how often a job may be passed on by workers that lack its image, and how long each waits */
export const PASSES = { max: 10, delayMs: 1000 } as const;

/**
 * Moves the job back to the queue (delayed) unless it was passed on PASSES.max times already.
 * The count lives beside the job in Redis: a tampered count changes only how soon the job
 * spends attempts, never what is built.
 */
async function passOn(connection: Redis, job: Job, token: string | undefined): Promise<boolean> {
  const counter = `${BLOB_PREFIX}:passes:${job.id ?? ''}`;
  let count = Number.NaN;
  const counted = connection
    .multi()
    .incr(counter)
    .expire(counter, 86_400)
    .exec()
    .then((replies) => {
      count = Number(replies?.[0]?.[1]);
    });
  if (!(await settledWithin(counted, 2000)) || !Number.isFinite(count) || count > PASSES.max) return false;
  let moved = false;
  await settledWithin(
    job.moveToDelayed(Date.now() + PASSES.delayMs, token).then(() => (moved = true)),
    2000,
  );
  return moved;
}

/**
 * What close() would reach only after BullMQ's main loop ends, which with Redis gone it never
 * does (its commands wait for a reconnect): the blocking connection, the lock renewal timer
 * and the stalled-job checker, whose timers would keep the process alive. BullMQ 5 internals;
 * test/integration/redis-trust.test.ts (SIGTERM with Redis gone) fails if they change.
 */
async function stopHard(worker: Worker): Promise<void> {
  const internals = worker as unknown as {
    blockingConnection?: { disconnect(wait?: boolean): Promise<void> };
    lockManager?: { close(): Promise<void> };
    stalledCheckStopper?: () => void;
  };
  await settledWithin(internals.blockingConnection?.disconnect(false) ?? Promise.resolve(), 500);
  await settledWithin(internals.lockManager?.close() ?? Promise.resolve(), 500);
  internals.stalledCheckStopper?.();
}

/**
 * A failed attempt's log (KfarmError.log) and hint, kept for the coordinator: the log as a
 * blob, a sealed pointer in the job's log. The last attempt's is what the report shows if the
 * job runs out of attempts.
 */
async function traceAttempt(job: Job, attempt: number, err: unknown, deps: { key: Buffer; blobs: BlobStore; logger: Logger }): Promise<void> {
  if (!isKfarmError(err) || (!err.log && !err.hint)) return;
  const trace: AttemptTrace = {
    attempt,
    ...(err.hint ? { hint: err.hint.slice(0, 4096) } : {}),
    ...(err.log ? { log: await deps.blobs.put(err.log) } : {}),
  };
  await job.log(`${ATTEMPT_TAG}${JSON.stringify({ ...trace, seal: seal(deps.key, 'attempt', job.id ?? '', trace) })}`);
}

/**
 * Stops BullMQ workers: their close() first, so they take no new job (a finishing job would
 * fetch the next one with it); then the running jobs end (the abort signal kills their
 * containers; each hands its job back). When Redis is away, BullMQ's loop waits on commands that
 * wait for a reconnect, and close() with it (a second close() only returns the first one's
 * promise): stop what holds the process instead; what was not handed back returns through
 * stall detection.
 */
export async function closeWorkers(
  workers: readonly Worker[],
  running: ReadonlySet<Promise<unknown>>,
  connection: Redis,
  logger: Logger,
  graceMs: number,
  what: string,
): Promise<void> {
  const closing = Promise.all(workers.map((w) => w.close()));
  closing.catch(() => undefined);
  await settledWithin(Promise.allSettled([...running]), graceMs);
  if (connection.status === 'ready' && (await settledWithin(closing, 2000))) {
    closeConnection(connection);
    return;
  }
  logger.warn(`Redis is not reachable: ${what} stops without it`);
  closeConnection(connection);
  await Promise.all(workers.map(stopHard));
}
