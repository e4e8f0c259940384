import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { BuildOptions } from '../config/build-options.js';
import type { Env } from '../config/env.js';
import { driverScript } from '../dkms/driver-script.js';
import { KfarmError, isKfarmError } from '../errors/kfarm-error.js';
import type { ContainerRuntime } from '../executor/runtime.js';
import { kernelTargets } from '../images/catalog.js';
import { selectKernels } from '../matrix/kernel-selector.js';
import type { KernelTarget } from '../matrix/kernel-target.js';
import type { JobOutcome, JobUpdate } from '../queue/build-queue.js';
import { recordArtifacts, type JobPayload, type KernelRecord } from '../queue/job-payload.js';
import { buildReport, type BuildReport, type KernelResult } from '../report/report.js';
import { packSource, type SourceArchive } from '../source/source-archive.js';
import { toolVersion } from '../version.js';
import { farmCatalog } from './farm-catalog.js';
import { openFarmSession, type FarmSession } from './farm-session.js';
import { settleIdentity, type ModuleIdentity } from './module-identity.js';
import { packageOutputs } from './package-outputs.js';

export interface BuildRequest {
  sourceDir: string;
  /** kernel selector (see matrix/kernel-selector.ts); default: every kernel of every image */
  kernels: string | undefined;
  outDir: string;
  options: BuildOptions;
  /** builds at once in this process (local mode) */
  concurrency: number;
  /** ignore finished results of earlier builds */
  noCache: boolean;
}

export type BuildEvent =
  | { type: 'note' | 'warning'; text: string }
  | { type: 'plan'; source: string; targets: KernelTarget[]; where: string }
  | { type: 'kernel'; kernel: string; state: 'queued' | 'running' | 'retrying'; detail?: string }
  | { type: 'kernel-done'; kernel: string; record: KernelRecord; cached: boolean };

export interface BuildDeps {
  env: Env;
  runtime: ContainerRuntime;
  logger: Logger;
  signal: AbortSignal;
  onEvent: (event: BuildEvent) => void;
}

/**
 * `kfarm build`: pack the source, fan out one job per kernel (each evaluates dkms.conf in its
 * container, as DKMS does per kernel), collect, settle the module's name and version, package,
 * report. Compile failures are in the report, not thrown; a broken environment throws
 * KfarmError before any work is queued, and a dkms.conf no kernel can use after.
 */
export async function runBuild(request: BuildRequest, deps: BuildDeps): Promise<BuildReport> {
  const startedAt = new Date();
  const source = await packSource(request.sourceDir);
  const outDir = path.resolve(request.outDir);

  const session = await openFarmSession({ ...deps, concurrency: request.concurrency });
  try {
    const catalog = await farmCatalog({
      runtime: deps.runtime,
      farm: session.distributed ? { redis: session.queue.redis, queueName: deps.env.queueName, where: session.where } : undefined,
    });
    for (const conflict of catalog.conflicts) deps.onEvent({ type: 'warning', text: conflict });
    deps.logger.info({ from: catalog.from, images: catalog.images.map((i) => i.name) }, 'kernels listed');
    const targets = selectKernels(request.kernels ?? 'all', kernelTargets(catalog.images));
    const sourceBlob = await session.blobs.put(source.tar);
    deps.logger.info({ source: source.dir, sha256: sourceBlob.sha256, files: source.files }, 'source uploaded');
    deps.onEvent({ type: 'plan', source: request.sourceDir, targets, where: session.where });

    const buildId = `${path.basename(source.dir)}-${Date.now().toString(36)}`;
    const payloads = targets.map((t) => payloadFor(source, t, request.options, buildId));
    const ran = await runJobs(session, payloads, request.noCache, deps, sourceBlobAgain(session, source), (r) =>
      r.record.failedStage === 'add' ? unusableConf(r, request.sourceDir, source) : undefined,
    );
    if (deps.signal.aborted) throw new KfarmError('INTERRUPTED', 'build interrupted; its containers were removed');
    const { identity, results, warnings } = moduleOf(ran, request.sourceDir, source);
    for (const warning of warnings) deps.onEvent({ type: 'warning', text: warning });

    const outputs = await packageOutputs({
      outDir,
      pkg: { name: identity.name, version: identity.version, dkmsConf: source.dkmsConf },
      source,
      results,
    });
    const report = buildReport({
      toolVersion,
      module: identity.name,
      version: identity.version,
      source: { dir: source.dir, sha256: source.sha256 },
      startedAt,
      finishedAt: new Date(),
      outDir,
      results: outputs.results,
      fullTarball: outputs.fullTarball,
      warnings,
    });
    await mkdir(outDir, { recursive: true });
    await writeFile(path.join(outDir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
    return report;
  } finally {
    await session.close();
  }
}

/**
 * Who the module is, from what dkms.conf said on each kernel. A dkms.conf that no kernel
 * could use is bad input (exit 2, nothing built); one that fails on some kernels only is
 * those kernels' verdict.
 */
function moduleOf(ran: JobResult[], sourceDir: string, source: SourceArchive): { identity: ModuleIdentity; results: JobResult[]; warnings: string[] } {
  const first = ran[0];
  if (first && ran.every((r) => r.record.verdict === 'failed' && r.record.reason === 'bad-conf')) throw unusableConf(first, sourceDir, source);
  const settled = settleIdentity(ran);
  const warnings = [...new Set(ran.flatMap((r) => r.record.warnings ?? []))];
  if (settled.identity) return { identity: settled.identity, results: settled.results, warnings };
  // Every kernel ended before dkms.conf gave a name (the farm could not run the jobs).
  warnings.push('no kernel got as far as reading the name and version from dkms.conf: the report is named after the source directory');
  return { identity: { name: path.basename(source.dir), version: 'unknown' }, results: settled.results, warnings };
}

function unusableConf(result: JobResult, sourceDir: string, source: SourceArchive): KfarmError {
  const { record } = result;
  const log = result.files.get(record.log.sha256)?.toString('utf8').trim().split('\n').slice(-8).join('\n') ?? '';
  return new KfarmError('DKMS_CONF_INVALID', `dkms.conf in ${sourceDir} is not usable: ${record.message ?? 'it could not be evaluated'}`, {
    context: { source: source.dir, kernel: record.kernel },
    hint: `Fix dkms.conf; DKMS needs PACKAGE_NAME, PACKAGE_VERSION and DEST_MODULE_LOCATION[i] for every module.${log ? `\nWhat evaluating it printed:\n${log}` : ''}`,
  });
}

function payloadFor(source: SourceArchive, target: KernelTarget, options: BuildOptions, buildId: string): JobPayload {
  return {
    schemaVersion: 1,
    sourceSha256: source.sha256,
    kernel: target.kernel,
    arch: target.arch,
    image: target.image,
    imageRef: target.imageRef,
    imageId: target.imageId,
    driverSha256: driverScript().sha256,
    options,
    buildId,
  };
}

interface JobResult {
  record: KernelRecord;
  cached: boolean;
  /** the record's blobs (log, modules), fetched as soon as it finished: Redis may go away later */
  files: ReadonlyMap<string, Buffer>;
}

/** Stores the source blob again: what jobs queued anew after a Redis data loss need. */
function sourceBlobAgain(session: FarmSession, source: SourceArchive): () => Promise<void> {
  return async () => {
    await session.blobs.put(source.tar);
  };
}

/**
 * Submits jobs, reuses cached results, waits for the rest; every kernel ends with a record.
 * `fatal` turns a result into an error that ends the whole build at once (a dkms.conf that
 * no kernel can use); what is still queued then, or after an interrupt, is abandoned.
 */
async function runJobs(
  session: FarmSession,
  payloads: JobPayload[],
  noCache: boolean,
  deps: BuildDeps,
  reupload: () => Promise<void>,
  fatal: (result: JobResult) => KfarmError | undefined,
): Promise<JobResult[]> {
  const reuse = async (record: KernelRecord) =>
    !noCache && (await Promise.all(recordArtifacts(record).map((a) => session.blobs.has(a.sha256)))).every(Boolean);
  const submitted = await Promise.all(payloads.map(async (p) => ({ payload: p, ...(await session.queue.submit(p, reuse)) })));
  const byJob = new Map(submitted.map((s) => [s.jobId, s.payload]));
  const onUpdate = (u: JobUpdate) => {
    const kernel = byJob.get(u.jobId)?.kernel ?? u.jobId;
    if (u.kind === 'active') deps.onEvent({ type: 'kernel', kernel, state: 'running' });
    else if (u.kind === 'progress') deps.onEvent({ type: 'kernel', kernel, state: 'running', detail: u.phase });
    else deps.onEvent({ type: 'kernel', kernel, state: 'retrying', detail: u.error });
  };
  /** A finished job's record with its blobs in hand; a result whose blobs vanished is built again. */
  const settle = async (payload: JobPayload, outcome: JobOutcome, cached: boolean, rebuilds = 2): Promise<JobResult> => {
    const record = 'record' in outcome ? outcome.record : await failedRecord(session, payload, outcome.error);
    try {
      return { record, cached, files: await session.blobs.getAll(recordArtifacts(record)) };
    } catch (err) {
      if (!isKfarmError(err, 'BLOB_MISSING') || rebuilds === 0) throw err;
    }
    deps.onEvent({ type: 'note', text: `the results for ${payload.kernel} vanished from Redis before kfarm fetched them: building it again` });
    await reupload();
    const { jobId } = await session.queue.submit(payload, async () => false);
    let again: JobOutcome = { jobId, error: 'the job disappeared from the queue' };
    await session.queue.waitAll([jobId], onUpdate, async (o) => {
      again = o;
    });
    return settle(payload, again, false, rebuilds - 1);
  };
  const results = new Map<string, JobResult>();
  const finished = new Set<string>();
  let failFast: (err: KfarmError) => void = () => undefined;
  const failedFast = new Promise<never>((_, reject) => (failFast = reject));
  failedFast.catch(() => undefined);
  const done = (jobId: string, payload: JobPayload, result: JobResult) => {
    const error = fatal(result);
    if (error) failFast(error);
    results.set(jobId, result);
    deps.onEvent({ type: 'kernel-done', kernel: payload.kernel, record: result.record, cached: result.cached });
  };
  for (const s of submitted) {
    if (s.cached) {
      finished.add(s.jobId);
      done(s.jobId, s.payload, await settle(s.payload, { jobId: s.jobId, record: s.cached, cached: true }, true));
    } else deps.onEvent({ type: 'kernel', kernel: s.payload.kernel, state: 'queued' });
  }
  const pending = submitted.filter((s) => !s.cached).map((s) => s.jobId);
  if (pending.length > 0 && session.distributed && (await session.queue.workerCount()) === 0) {
    deps.onEvent({ type: 'note', text: `no kfarm worker is connected to ${session.where} yet: start one with \`REDIS_URL=... kfarm worker\`` });
  }
  const abort = new Promise<void>((resolve) => deps.signal.addEventListener('abort', () => resolve(), { once: true }));
  const waiting = session.queue.waitAll(pending, onUpdate, async (outcome) => {
    finished.add(outcome.jobId);
    const payload = byJob.get(outcome.jobId) as JobPayload;
    done(outcome.jobId, payload, await settle(payload, outcome, false));
  });
  // After an interrupt the session closes under it: what it says then is of no interest.
  waiting.catch(() => undefined);
  const watch = watchForLostJobs(pending.filter((id) => !finished.has(id)), (id) => finished.has(id), async (jobId) => {
    const payload = byJob.get(jobId) as JobPayload;
    await reupload();
    await session.queue.submit(payload, async () => false);
    deps.onEvent({ type: 'note', text: `the job for ${payload.kernel} vanished from Redis (restarted without its data?): queued it again` });
  }, session, deps.logger);
  try {
    await Promise.race([waiting, abort, failedFast]);
  } finally {
    watch.stop();
    session.abandon(pending.filter((id) => !finished.has(id)));
  }
  return submitted.map((s) => results.get(s.jobId)).filter((r): r is JobResult => r !== undefined);
}

/** A job the farm could not run (after retries) still gets a line in the report. */
async function failedRecord(session: FarmSession, payload: JobPayload, error: string): Promise<KernelRecord> {
  const log = await session.blobs.put(Buffer.from(`[kfarm] the job failed on the farm: ${error}\n`));
  return {
    schemaVersion: 1,
    kernel: payload.kernel,
    arch: payload.arch,
    image: payload.image,
    verdict: 'failed',
    reason: 'worker-error',
    message: error,
    firstError: error.split('\n')[0] ?? error,
    modules: [],
    log,
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
 */
function watchForLostJobs(
  jobIds: readonly string[],
  finished: (jobId: string) => boolean,
  requeue: (jobId: string) => Promise<void>,
  session: FarmSession,
  logger: Logger,
): { stop(): void } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const check = async () => {
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
