import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, QueueEvents, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { describeError } from '../errors/kfarm-error.js';
import { settledWithin } from '../util/settled-within.js';
import { verifyJobId, verifyPayloadSchema, verifyQueueName, verifyResultSchema, VERIFY_LANES, type VerifyLane, type VerifyPayload, type VerifyResult } from '../job/verify-job.js';
import { closeWorkers } from './build-queue.js';
import { seal, verifySeal } from './record-seal.js';
import { closeConnection, connect, rateLimited, type RedisTarget } from './redis-connection.js';

/**
 * Boots as BullMQ jobs (the build queue's rules: payload and result sealed with the farm key,
 * both checked against their schema), one queue per capability (job/verify-job.ts routes).
 * A boot is never reused: its job is removed once its coordinator has the result.
 *
 * A coordinator's boots end with it. Each VerifyQueue is one run: it holds a lease in Redis
 * (renewed while it lives) and stamps its id on every payload. Closing removes its unfinished
 * jobs and the lease; a run killed with SIGKILL leaves a lease that expires within
 * RUN_LEASE_TTL_MS. A worker drops a job whose run has no lease without booting it, and stops a
 * boot whose run's lease goes away; every run sweeps such jobs out of the queues when it starts.
 */
export type VerifyOutcome = { jobId: string; result: VerifyResult } | { jobId: string; error: string };

/** how long a run's lease outlives its last renewal (a run killed with SIGKILL: its boots end this long after) */
export const RUN_LEASE_TTL_MS = 20_000;
const RUN_LEASE_RENEW_MS = 5_000;
/** how often a waiting run checks that a live worker still consumes its jobs' lane, and a worker that a boot's run still lives */
export const LIVENESS_CHECK_MS = 5_000;
/** a lane that showed no worker this many checks in a row is unserved (one check can fall between a worker's reconnects) */
const UNSERVED_CHECKS = 2;

export const runLeaseKey = (base: string, run: string): string => `kfarm:${base}:verify-run:${run}`;

/** true when the run's lease is in Redis; undefined when Redis did not answer in time (unknown is not gone) */
async function runAlive(redis: Redis, base: string, run: string): Promise<boolean | undefined> {
  let alive: boolean | undefined;
  await settledWithin(
    redis.exists(runLeaseKey(base, run)).then((n) => (alive = n === 1)),
    2000,
  );
  return alive;
}

const QUEUED_STATES = ['waiting', 'delayed', 'prioritized', 'paused'] as const;

export class VerifyQueue {
  /** this run's id: on every payload it queues, and its lease's name */
  readonly run = randomBytes(16).toString('hex');
  private readonly connection: Redis;
  private readonly eventsConnections: Redis[] = [];
  private readonly queues = new Map<VerifyLane, Queue>();
  private readonly events = new Map<VerifyLane, QueueEvents>();
  /** this run's jobs not yet answered: removed on close */
  private readonly pending = new Map<string, VerifyLane>();
  private renewTimer: NodeJS.Timeout | undefined;
  private readonly laneChecks = new Map<VerifyLane, { at: number; served: Promise<boolean> }>();

  constructor(
    target: RedisTarget,
    readonly base: string,
    private readonly key: Buffer,
  ) {
    this.connection = connect(target);
    for (const lane of VERIFY_LANES) {
      const name = verifyQueueName(base, lane);
      const eventsConnection = connect(target);
      this.eventsConnections.push(eventsConnection);
      // a 'closing' listener per waited boot (job.waitUntilFinished), all boots waited at once: not a leak
      this.queues.set(lane, new Queue(name, { connection: this.connection, streams: { events: { maxLen: 2000 } } }).setMaxListeners(0));
      this.events.set(lane, new QueueEvents(name, { connection: eventsConnection }));
    }
  }

  /** Connects and takes this run's lease (renewed until close). */
  async ready(): Promise<void> {
    for (const lane of VERIFY_LANES) {
      await this.lane(lane).queue.waitUntilReady();
      await this.lane(lane).events.waitUntilReady();
    }
    const lease = () => this.connection.set(runLeaseKey(this.base, this.run), '1', 'PX', RUN_LEASE_TTL_MS);
    await lease();
    // Redis restarting: the next round tries again; a lease that lapsed meanwhile drops this run's
    // waiting boots (their rows say worker-error), never another run's
    this.renewTimer = setInterval(() => void lease().catch(() => undefined), RUN_LEASE_RENEW_MS);
    this.renewTimer.unref();
  }

  private lane(lane: VerifyLane): { queue: Queue; events: QueueEvents } {
    const queue = this.queues.get(lane);
    const events = this.events.get(lane);
    if (!queue || !events) throw new Error(`no verify queue for ${lane}`);
    return { queue, events };
  }

  /**
   * Removes the boots of runs that are gone (no lease: interrupted with a second Ctrl-C, killed,
   * or queued by a kfarm that stamped no run) from every lane, so that they never run before
   * this run's. Returns how many.
   */
  async sweepAbandoned(): Promise<number> {
    let removed = 0;
    const alive = new Map<string, Promise<boolean | undefined>>();
    for (const lane of VERIFY_LANES) {
      const jobs = await this.lane(lane).queue.getJobs([...QUEUED_STATES]);
      for (const job of jobs) {
        const run = (job.data as { payload?: { run?: unknown } } | undefined)?.payload?.run;
        if (typeof run === 'string' && !alive.has(run)) alive.set(run, runAlive(this.connection, this.base, run));
        if (typeof run === 'string' && (await alive.get(run)) !== false) continue;
        if (
          await job.remove().then(
            () => true,
            () => false,
          )
        )
          removed++;
      }
    }
    return removed;
  }

  /** The lanes at least one live worker consumes (BullMQ's worker connections on each lane's queue). */
  async servedLanes(): Promise<Set<VerifyLane>> {
    const served = await Promise.all(VERIFY_LANES.map(async (lane) => [lane, await this.laneServed(lane, 0)] as const));
    return new Set(served.filter(([, yes]) => yes).map(([lane]) => lane));
  }

  /** One CLIENT LIST per lane per `maxAgeMs`, however many boots wait on it. */
  private laneServed(lane: VerifyLane, maxAgeMs = LIVENESS_CHECK_MS / 2): Promise<boolean> {
    const last = this.laneChecks.get(lane);
    if (last && Date.now() - last.at <= maxAgeMs) return last.served;
    const served = this.lane(lane)
      .queue.getWorkersCount()
      .then((n) => n > 0);
    this.laneChecks.set(lane, { at: Date.now(), served });
    return served;
  }

  async submit(payload: VerifyPayload, lane: VerifyLane): Promise<string> {
    if (payload.run !== this.run) throw new Error('a verify payload must carry the run of the queue that submits it');
    const jobId = verifyJobId(payload);
    this.pending.set(jobId, lane);
    await this.lane(lane).queue.add(
      'verify',
      { payload, seal: seal(this.key, 'verify-payload', jobId, payload) },
      {
        jobId,
        // infrastructure errors (an engine restarting) get 2+4 s to pass; a boot's own failure is its result
        attempts: 3,
        backoff: { type: 'exponential', delay: 2000 },
        removeOnComplete: { age: 3600, count: 20_000 },
        removeOnFail: { age: 24 * 3600 },
      },
    );
    return jobId;
  }

  /**
   * Waits for one boot; never throws for a failed job. A result whose seal or schema fails is an
   * error. `unserved`: no live worker consumes the lane any more and nobody started the job; it
   * was taken off the queue (the caller may route it again). `interrupted`: the signal fired.
   */
  async wait(jobId: string, lane: VerifyLane, signal?: AbortSignal): Promise<VerifyOutcome | { jobId: string; unserved: VerifyLane } | { jobId: string; interrupted: true }> {
    const { queue, events } = this.lane(lane);
    const job = await queue.getJob(jobId);
    if (!job) return { jobId, error: 'the verify job disappeared from the queue' };
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) stop.abort();
    const finished = job.waitUntilFinished(events).then(
      (value: unknown) => ({ value }),
      (err: unknown) => ({ err }),
    );
    try {
      const first = await Promise.race([finished, this.watchLane(job, lane, stop.signal)]);
      if (first === 'stopped' || signal?.aborted) return { jobId, interrupted: true };
      if (first === 'unserved') {
        this.pending.delete(jobId);
        return { jobId, unserved: lane };
      }
      if ('err' in first) return { jobId, error: describeError(first.err) };
      await job.remove().catch(() => undefined);
      this.pending.delete(jobId);
      return { jobId, ...openVerifyResult(this.key, jobId, first.value) };
    } finally {
      stop.abort();
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Resolves 'unserved' once the lane has had no worker for UNSERVED_CHECKS checks and the job
   * could be taken off the queue unstarted; 'stopped' when `stop` fires. A started job is left to
   * its worker (stall detection hands it back if that worker dies).
   */
  private async watchLane(job: Job, lane: VerifyLane, stop: AbortSignal): Promise<'unserved' | 'stopped'> {
    let misses = 0;
    // false once `stop` fires (the timer and its listener go with it)
    const pause = () =>
      sleep(LIVENESS_CHECK_MS, undefined, { signal: stop }).then(
        () => true,
        () => false,
      );
    while (await pause()) {
      const served = await this.laneServed(lane).catch(() => true);
      misses = served ? 0 : misses + 1;
      if (misses < UNSERVED_CHECKS) continue;
      const state = await job.getState().catch(() => 'unknown');
      if (
        (QUEUED_STATES as readonly string[]).includes(state) &&
        (await job.remove().then(
          () => true,
          () => false,
        ))
      )
        return 'unserved';
    }
    return 'stopped';
  }

  /** Removes boots nobody started (an interrupted verify). */
  async cancel(jobs: ReadonlyArray<{ jobId: string; lane: VerifyLane }>): Promise<void> {
    for (const { jobId, lane } of jobs) {
      const job = await this.lane(lane).queue.getJob(jobId);
      if (job && ['waiting', 'delayed', 'prioritized', 'paused', 'failed'].includes(await job.getState())) await job.remove().catch(() => undefined);
    }
  }

  /**
   * Ends this run: its unanswered jobs leave the queues (a job a remote worker is booting stays
   * locked; the lease going away stops that boot within LIVENESS_CHECK_MS), then its lease.
   */
  async close(): Promise<void> {
    clearInterval(this.renewTimer);
    if (this.connection.status === 'ready') {
      await settledWithin(this.cancel([...this.pending].map(([jobId, lane]) => ({ jobId, lane }))), 10_000);
      await settledWithin(this.connection.del(runLeaseKey(this.base, this.run)), 2000);
    }
    for (const lane of VERIFY_LANES) {
      await this.lane(lane)
        .events.close()
        .catch(() => undefined);
      await this.lane(lane)
        .queue.close()
        .catch(() => undefined);
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

/** `job.signal` fires when the run that queued the boot is gone: stop, nobody wants the answer */
export type VerifyProcessor = (payload: VerifyPayload, job: { id: string; lane: VerifyLane; signal: AbortSignal }) => Promise<VerifyResult>;

const ABANDONED = 'the run that queued this boot is gone (no lease in Redis: interrupted or killed): dropped without booting';

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
    const { run } = payload.data;
    if ((await runAlive(connection, base, run)) === false) {
      logger.info({ job: jobId.slice(0, 12), run: run.slice(0, 12) }, 'dropped a boot job whose run is gone');
      throw new UnrecoverableError(ABANDONED);
    }
    // the run may die while its boot runs: stop the boot then, it would hold a slot for nobody
    const gone = new AbortController();
    const watch = setInterval(() => {
      void runAlive(connection, base, run).then((alive) => {
        if (alive === false) gone.abort();
      });
    }, LIVENESS_CHECK_MS);
    let result: VerifyResult | undefined;
    let failure: unknown;
    try {
      result = await process(payload.data, { id: jobId, lane, signal: gone.signal });
    } catch (err) {
      failure = err;
    } finally {
      clearInterval(watch);
    }
    if (gone.signal.aborted) {
      logger.info({ job: jobId.slice(0, 12), run: run.slice(0, 12) }, 'stopped a boot whose run is gone');
      throw new UnrecoverableError(ABANDONED.replace('dropped without booting', 'its boot was stopped'));
    }
    if (!result) throw failure;
    return { result, seal: seal(key, 'verify-result', jobId, result) };
  }
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  return {
    close: (graceMs = 10_000) => closeWorkers(workers, running, connection, logger, graceMs, 'the verify worker'),
  };
}
