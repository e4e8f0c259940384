import type { Logger } from 'pino';
import { jobKey } from '../job/job-key.js';
import { KfarmError, describeError, isKfarmError } from '../errors/kfarm-error.js';
import type { ResultStore } from '../store/result-store.js';
import type { AttemptTrace, JobOutcome, JobUpdate } from '../queue/build-queue.js';
import { recordArtifacts, type Artifact, type JobPayload, type KernelRecord } from '../job/job-payload.js';
import { acceptRecord } from '../job/record-check.js';
import type { Reason } from '../dkms/verdicts.js';
import type { BuildDeps } from './build-types.js';
import type { FarmSession } from './farm-session.js';
import { cleanText, TEXT_LIMITS } from '../util/clean-text.js';

/**
 * The waiting half of a build: jobs in, one result per kernel out, with its blobs in hand.
 * Cached results are reused, lost jobs queued again, vanished results built again.
 */
export interface JobResult {
  record: KernelRecord;
  cached: boolean;
  /** the record's blobs (log, modules), fetched as soon as it finished: Redis may go away later */
  files: ReadonlyMap<string, Buffer>;
}

export interface FarmAccess {
  /** opened on the first miss: a run whose every job is in the store starts no Redis */
  session: () => Promise<FarmSession>;
  /** results on disk (src/store/); undefined: none kept */
  store: ResultStore | undefined;
}

/** What runJobs needs: the jobs, where their results come from, and how the run names and orders them. */
export interface RunJobsOptions {
  /** an open session (no store), or a session opened on the first miss and the store */
  access: FarmSession | FarmAccess;
  /** the jobs of the run; the results come back in this order (without those abandoned after an interrupt) */
  payloads: JobPayload[];
  /** `--no-cache`: nothing is reused, neither from the result store nor from Redis */
  noCache: boolean;
  deps: BuildDeps;
  /** makes sure the source blob is in Redis for a while yet: on every check, and before a requeue */
  keepSource: () => Promise<void>;
  /** an error that ends the whole build at once for this result (a dkms.conf no kernel can use), or undefined */
  fatal: (result: JobResult, payload: JobPayload) => KfarmError | undefined;
  /** how progress names a job: its kernel, or `<source>: <kernel>` when a run builds several sources; unset: its kernel */
  label?: (payload: JobPayload) => string;
  /** the job's queue priority (src/queue/job-priority.ts); unset: first come, first served */
  priority?: (payload: JobPayload) => number;
}

/**
 * Submits jobs, reuses cached results, waits for the rest; every kernel ends with a record.
 * `fatal` turns a result into an error that ends the whole build at once (a dkms.conf that
 * no kernel can use); what is still queued then, or after an interrupt, is abandoned.
 * A result that fails its integrity check or answers another job is never used: it is built
 * again (once), and `warnings` (for the report) says so.
 */
export async function runJobs(options: RunJobsOptions): Promise<{ results: JobResult[]; warnings: string[] }> {
  const { access, payloads, noCache, deps, keepSource, fatal } = options;
  const label = options.label ?? ((p: JobPayload) => p.kernel);
  const priority = options.priority ?? (() => undefined);
  const warnings: string[] = [];
  const warn = (text: string) => {
    warnings.push(text);
    deps.onEvent({ type: 'warning', text });
  };
  const farm: FarmAccess = 'queue' in access ? { session: async () => access, store: undefined } : access;
  const { store } = farm;
  // The store first: a hit is a result with its blobs in hand, checked by hash, no Redis involved.
  const fromStore = new Map<JobPayload, JobResult>();
  if (store && !noCache) {
    for (const p of payloads) {
      const hit = await store.get(jobKey(p)).catch((err: unknown) => {
        deps.logger.warn({ err: describeError(err) }, 'result store: could not read; building instead');
        return undefined;
      });
      if (!hit) continue;
      try {
        fromStore.set(p, { record: acceptRecord(p, hit.record), cached: true, files: hit.files });
      } catch (err) {
        if (!isKfarmError(err, 'RECORD_REJECTED')) throw err;
        deps.logger.warn({ kernel: p.kernel, err: describeError(err) }, 'result store: an entry names another job; building it again');
      }
    }
  }
  // Each result goes to the store as it arrives, before it is announced: a coordinator killed
  // with SIGKILL loses only the jobs still running, never what it reported done. Eviction waits
  // for the end of the run (it reads the whole store).
  const writes: Array<Promise<void>> = [];
  let storeFailed = false;
  const keep = (payload: JobPayload, result: JobResult): Promise<void> => {
    if (!store || !result.record.cacheable) return Promise.resolve();
    const write = store.put(jobKey(payload), result.record, result.files, { evict: false }).catch((err: unknown) => {
      // the results are in hand and the report will be written: a full disk costs only the next run's cache
      if (!storeFailed) warn(`could not keep results in the result store ${store.dir}: ${describeError(err)}`);
      storeFailed = true;
    });
    writes.push(write);
    return write;
  };
  const settledFromStore = [...fromStore].map(([payload, result]) => ({ payload, result }));
  for (const { payload, result } of settledFromStore) {
    const error = fatal(result, payload);
    if (error) throw error;
    deps.onEvent({ type: 'kernel-done', kernel: label(payload), record: result.record, cached: true });
  }
  const misses = payloads.filter((p) => !fromStore.has(p));
  if (misses.length === 0) {
    deps.logger.info({ jobs: payloads.length }, 'every job found in the result store: no farm session opened');
    return { results: payloads.map((p) => fromStore.get(p) as JobResult), warnings };
  }
  const session = await farm.session();
  let fetched: Map<JobPayload, JobResult>;
  try {
    fetched = await runOnFarm({ session, payloads: misses, noCache, deps, keepSource, fatal, label, priority, warn, keep });
  } finally {
    // also after an interrupt or a refusal: what finished is kept for the next run
    await Promise.all(writes);
  }
  if (store && writes.length > 0 && !storeFailed) {
    await store.evict().catch((err: unknown) => warn(`could not keep results in the result store ${store.dir}: ${describeError(err)}`));
  }
  return {
    results: payloads.map((p) => fromStore.get(p) ?? fetched.get(p)).filter((r): r is JobResult => r !== undefined),
    warnings,
  };
}

/** What runOnFarm needs: runJobs's options for the jobs the store did not have, on an open session. */
interface FarmRunOptions extends Pick<RunJobsOptions, 'noCache' | 'deps' | 'keepSource' | 'fatal'> {
  /** the farm session, opened by runJobs on its first miss */
  session: FarmSession;
  /** the jobs the result store did not have */
  payloads: JobPayload[];
  /** how progress and warnings name a job */
  label: (payload: JobPayload) => string;
  /** the job's queue priority; undefined: first come, first served */
  priority: (payload: JobPayload) => number | undefined;
  /** a warning for the report, also shown as it happens */
  warn: (text: string) => void;
  /** keeps a result in the result store; resolves once it is on disk */
  keep: (payload: JobPayload, result: JobResult) => Promise<void>;
}

/** The jobs the store did not have, through Redis: results by payload (absent when abandoned). */
async function runOnFarm(options: FarmRunOptions): Promise<Map<JobPayload, JobResult>> {
  const { session, payloads, noCache, deps, keepSource, fatal, label, priority, warn, keep } = options;
  const reuse = async (record: KernelRecord) => !noCache && (await Promise.all(recordArtifacts(record).map((a) => session.blobs.has(a.sha256)))).every(Boolean);
  const submitted = await Promise.all(payloads.map(async (p) => ({ payload: p, ...(await session.queue.submit(p, reuse, priority(p))) })));
  const byJob = new Map(submitted.map((s) => [s.jobId, s.payload]));
  const onUpdate = (u: JobUpdate) => {
    const payload = byJob.get(u.jobId);
    const kernel = payload ? label(payload) : u.jobId;
    if (u.kind === 'active') deps.onEvent({ type: 'kernel', kernel, state: 'running' });
    else if (u.kind === 'progress') deps.onEvent({ type: 'kernel', kernel, state: 'running', detail: u.phase });
    else deps.onEvent({ type: 'kernel', kernel, state: 'retrying', detail: u.error });
  };
  /** Queues a job again (nothing reused) and waits for its outcome. */
  const buildAgain = async (payload: JobPayload): Promise<JobOutcome> => {
    await keepSource();
    const { jobId } = await session.queue.submit(payload, async () => false, priority(payload));
    let again: JobOutcome = { jobId, error: 'the job disappeared from the queue' };
    await session.queue.waitAll([jobId], onUpdate, async (o) => {
      again = o;
    });
    return again;
  };
  /**
   * A finished job's record with its blobs in hand. A result whose blobs vanished is built
   * again (twice at most); one that is not to be trusted (bad seal, another job's) once.
   */
  const settle = async (payload: JobPayload, outcome: JobOutcome, cached: boolean, rebuilds = { vanished: 2, refused: 1 }): Promise<JobResult> => {
    const refusal = 'distrusted' in outcome ? 'a result in Redis failed its integrity check' : 'record' in outcome ? rejection(payload, outcome.record) : undefined;
    if (refusal !== undefined) {
      deps.logger.warn({ kernel: payload.kernel, job: outcome.jobId.slice(0, 12), why: 'distrusted' in outcome ? outcome.distrusted : refusal }, 'result refused');
      if (rebuilds.refused === 0) {
        warn(`${label(payload)}: ${refusal} again; it was not used`);
        return settle(payload, { jobId: outcome.jobId, error: `${refusal} twice: not used (is someone else writing to this Redis?)` }, false, { ...rebuilds, refused: 0 });
      }
      warn(`${label(payload)}: ${refusal} and was built again`);
      return settle(payload, await buildAgain(payload), false, { ...rebuilds, refused: rebuilds.refused - 1 });
    }
    const record = 'record' in outcome ? acceptRecord(payload, outcome.record) : await failedRecord(session, payload, outcome as { error: string; last?: AttemptTrace });
    try {
      const files = await session.blobs.getAll(recordArtifacts(record));
      // in hand and about to go to disk: Redis keeps them only briefly (another build sharing the job fetches them now)
      await session.blobs.release(recordArtifacts(record)).catch(() => undefined);
      return { record, cached, files };
    } catch (err) {
      if (!isKfarmError(err, 'BLOB_MISSING') || rebuilds.vanished === 0) throw err;
    }
    deps.onEvent({ type: 'note', text: `the results for ${label(payload)} vanished from Redis before kfarm fetched them: building it again` });
    return settle(payload, await buildAgain(payload), false, { ...rebuilds, vanished: rebuilds.vanished - 1 });
  };
  const results = new Map<string, JobResult>();
  const finished = new Set<string>();
  let failFast: (err: KfarmError) => void = () => undefined;
  const failedFast = new Promise<never>((_, reject) => (failFast = reject));
  failedFast.catch(() => undefined);
  const done = async (jobId: string, payload: JobPayload, result: JobResult) => {
    const error = fatal(result, payload);
    if (error) failFast(error);
    results.set(jobId, result);
    await keep(payload, result);
    deps.onEvent({ type: 'kernel-done', kernel: label(payload), record: result.record, cached: result.cached });
  };
  for (const s of submitted) {
    if (s.distrusted) {
      deps.logger.warn({ kernel: s.payload.kernel, job: s.jobId.slice(0, 12), why: s.distrusted }, 'cached result refused');
      warn(`${label(s.payload)}: a result in Redis failed its integrity check and was built again`);
    }
    if (s.cached) {
      finished.add(s.jobId);
      await done(s.jobId, s.payload, await settle(s.payload, { jobId: s.jobId, record: s.cached, cached: true }, true));
    } else deps.onEvent({ type: 'kernel', kernel: label(s.payload), state: 'queued' });
  }
  const pending = submitted.filter((s) => !s.cached).map((s) => s.jobId);
  if (pending.length > 0 && session.distributed && (await session.queue.workerCount()) === 0) {
    deps.onEvent({ type: 'note', text: `no kfarm worker is connected to ${session.where} yet: start one with \`REDIS_URL=... kfarm worker\`` });
  }
  // removed when the wait ends: a long-lived signal (a worker's, a bench's thousand runs) must not collect listeners
  let onAbort: () => void = () => undefined;
  const abort = new Promise<void>((resolve) => {
    onAbort = () => resolve();
    deps.signal.addEventListener('abort', onAbort, { once: true });
  });
  const waiting = session.queue.waitAll(pending, onUpdate, async (outcome) => {
    finished.add(outcome.jobId);
    const payload = byJob.get(outcome.jobId) as JobPayload;
    await done(outcome.jobId, payload, await settle(payload, outcome, false));
  });
  // After an interrupt the session closes under it: what it says then is of no interest.
  waiting.catch(() => undefined);
  const watch = watchForLostJobs(
    pending.filter((id) => !finished.has(id)),
    (id) => finished.has(id),
    keepSource,
    async (jobId) => {
      const payload = byJob.get(jobId) as JobPayload;
      await session.queue.submit(payload, async () => false, priority(payload));
      deps.onEvent({ type: 'note', text: `the job for ${label(payload)} vanished from Redis (restarted without its data?): queued it again` });
    },
    session,
    deps.logger,
  );
  try {
    await Promise.race([waiting, abort, failedFast]);
  } finally {
    watch.stop();
    deps.signal.removeEventListener('abort', onAbort);
    session.abandon(pending.filter((id) => !finished.has(id)));
  }
  const byPayload = new Map<JobPayload, JobResult>();
  for (const s of submitted) {
    const r = results.get(s.jobId);
    if (r) byPayload.set(s.payload, r);
  }
  return byPayload;
}

/** Why a record cannot stand for this job (it names another kernel, arch or image), if so. */
function rejection(payload: JobPayload, record: KernelRecord): string | undefined {
  try {
    acceptRecord(payload, record);
    return undefined;
  } catch (err) {
    if (!isKfarmError(err, 'RECORD_REJECTED')) throw err;
    return 'a result in Redis answered another job';
  }
}

/**
 * A job the farm could not run (after retries) still gets a line in the report, and as its log
 * what the last attempt printed (kept by the worker, checked against its sha256) after the
 * error and its hint.
 */
async function failedRecord(session: FarmSession, payload: JobPayload, outcome: { error: string; last?: AttemptTrace | undefined }): Promise<KernelRecord> {
  const { error, last } = outcome;
  const head = [`[kfarm] the job failed on the farm: ${error}`, ...(last?.hint ? [`[kfarm] ${last.hint}`] : [])];
  let printed: Buffer | undefined;
  if (last?.log) {
    printed = await session.blobs.get(last.log.sha256).catch(() => undefined);
    head.push(printed ? `[kfarm] what attempt ${last.attempt} printed:` : `[kfarm] the log of attempt ${last.attempt} is gone from Redis`);
  }
  const log = await session.blobs.put(Buffer.concat([Buffer.from(`${head.join('\n')}\n`), printed ?? Buffer.alloc(0)]));
  // the error text is a worker's word (BullMQ's failedReason): cleaned like any record's text
  const message = cleanText(last?.hint ? `${error} (${last.hint.split('\n')[0] ?? ''})` : error, TEXT_LIMITS.message);
  return coordinatorFailure(payload, { reason: 'worker-error', message, firstError: cleanText(error.split('\n')[0] ?? error, TEXT_LIMITS.firstError), log });
}

/**
 * A `failed` record the coordinator writes itself, for a job no container finished (the farm
 * gave up on it, or a dependency kept it from starting): never cached, since the next run may
 * go the other way.
 */
export function coordinatorFailure(
  payload: Pick<JobPayload, 'kernel' | 'arch' | 'image'>,
  why: { reason: Reason; message: string; firstError: string; log: Artifact },
): KernelRecord {
  return {
    schemaVersion: 1,
    kernel: payload.kernel,
    arch: payload.arch,
    image: payload.image,
    verdict: 'failed',
    ...why,
    modules: [],
    logTruncated: false,
    durationMs: 0,
    worker: '',
    finishedAt: new Date().toISOString(),
    cacheable: false,
  };
}

/** How often the coordinator checks that the jobs it waits for still exist in Redis. */
const LOST_JOB_CHECK_MS = 10_000;

/**
 * A Redis that restarts without its data (no persistence) forgets queued and running jobs, and
 * whoever waits for them would wait forever. Jobs still awaited but gone are queued again.
 * Each check first keeps the source blob alive (and puts it back if it is gone), so a job
 * queued again finds it.
 */
function watchForLostJobs(
  jobIds: readonly string[],
  finished: (jobId: string) => boolean,
  keepSource: () => Promise<void>,
  requeue: (jobId: string) => Promise<void>,
  session: FarmSession,
  logger: Logger,
): { stop(): void } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const check = async () => {
    if (jobIds.some((id) => !finished(id))) await keepSource();
    for (const jobId of jobIds) {
      if (stopped) return;
      if (finished(jobId) || (await session.queue.has(jobId))) continue;
      await requeue(jobId);
    }
  };
  const schedule = () => {
    timer = setTimeout(() => {
      check()
        .catch((err: unknown) => logger.warn({ err }, 'could not check the queued jobs (Redis away?); trying again'))
        .finally(() => !stopped && schedule());
    }, LOST_JOB_CHECK_MS);
  };
  schedule();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
