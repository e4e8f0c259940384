import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import type { BuildOptions } from '../config/build-options.js';
import { driverScript } from '../dkms/driver-script.js';
import { KfarmError, describeError } from '../errors/kfarm-error.js';
import { kernelTargets, type KfarmImage } from '../images/catalog.js';
import type { KernelTarget } from '../matrix/kernel-target.js';
import type { BuiltKernel } from '../matrix/new-kernels.js';
import type { JobPayload } from '../job/job-payload.js';
import { packSource, type SourceArchive } from '../source/source-archive.js';
import { makeDirs } from '../util/make-dir.js';
import { readHistory, recordHistory } from './build-history.js';
import { jobPayload, orderSources, planBuild, signingImages, waveJobs, wantsHistory, type BuildPlan, type PlannedJob } from './build-plan.js';
import { farmCatalog } from './farm-catalog.js';
import { farmOnDemand, type FarmOnDemand } from './farm-on-demand.js';
import { ResultStore } from '../store/result-store.js';
import { cacheBound } from '../store/size.js';
import { runJobs, type JobResult } from './run-jobs.js';
import { refuseSameModule, settleModule, unusableConf, type Settled } from './settle-module.js';
import { writeBuildOutputs } from './write-build-outputs.js';
import type { BuildDeps, BuildOutcome, BuildRequest, NothingNew } from './build-types.js';
import { isInputRefusal, reportRefusal, type RefusedSource } from './refusal-report.js';
import { currentInstance } from '../process/instance.js';
import { LABEL_HOST, LABEL_INSTANCE, LABEL_PID } from '../worker/build-worker.js';

/**
 * `kfarm build <src>...`: pack each source, fan out one job per (source, kernel) (each
 * evaluates dkms.conf in its container, as DKMS does per kernel), collect, settle each module's
 * name and version, package, report. Compile failures are in the report, not thrown; a broken
 * environment throws KfarmError before any work is queued, and a dkms.conf no kernel can use after.
 * A refused module input (refusal-report.ts) writes its report first, every kernel failed.
 */
export async function runBuild(request: BuildRequest, deps: BuildDeps): Promise<BuildOutcome | NothingNew> {
  const startedAt = new Date();
  /** each source's kernels, once planned: a refusal after that reports on them */
  const planned: RefusedSource[] = [];
  try {
    return await buildSources(request, deps, startedAt, planned);
  } catch (err) {
    // a module input refused (exit 2) still writes report.json and junit.xml: every requested kernel failed, with the reason
    if (isInputRefusal(err)) await reportRefusal(err, { request, deps, startedAt, planned, outDir: () => usableOutDir(request.outDir) });
    throw err;
  }
}

async function buildSources(request: BuildRequest, deps: BuildDeps, startedAt: Date, known: RefusedSource[]): Promise<BuildOutcome | NothingNew> {
  if (request.sourceDirs.length === 0) throw new KfarmError('BAD_OPTION', 'no source directory given', { hint: 'Pass one or more module sources: kfarm build <source-dir>...' });
  const sources: SourceArchive[] = [];
  // the out dir and the state dir are never packed when they lie inside a source (`cd src && kfarm build .`)
  const exclude = [
    { path: request.outDir, what: '--out dir' },
    { path: deps.env.stateDir, what: 'state dir' },
  ];
  for (const dir of request.sourceDirs) {
    const packed = await packSource(dir, { exclude });
    for (const e of packed.excluded) deps.onEvent({ type: 'note', text: `${dir}: left ${e.path}/ out of the source (the ${e.what})` });
    sources.push(packed);
  }
  const order = orderSources(request.sourceDirs, sources);
  const outDir = await usableOutDir(request.outDir);
  const farm = farmOnDemand(deps, request.concurrency);
  const store = ResultStore.under(deps.env.stateDir, cacheBound(request.cacheSize, deps.env.cacheSize), deps.logger);
  try {
    // with REDIS_URL the catalog is the farm's, so the session opens now
    const distributed = deps.env.redisUrl ? await farm.session() : undefined;
    const catalog = await farmCatalog({
      runtime: deps.runtime,
      farm: distributed ? { redis: distributed.queue.redis, queueName: deps.env.queueName, where: distributed.where } : undefined,
    });
    for (const conflict of catalog.conflicts) deps.onEvent({ type: 'warning', text: conflict });
    deps.logger.info({ from: catalog.from, images: catalog.images.map((i) => i.name) }, 'kernels listed');
    const selector = request.kernels ?? deps.env.defaultKernels ?? 'all';
    const lastBuilt = wantsHistory(selector) ? await readHistories(deps.env.stateDir, sources) : undefined;
    const plan = planBuild({
      order,
      selector,
      held: kernelTargets(catalog.images),
      lastBuilt,
      options: request.options,
      driverSha256: driverScript().sha256,
      stamp: Date.now().toString(36),
    });
    if ('nothingNew' in plan) return plan;
    known.push(...plan.sources.map((p) => ({ dir: p.dir, source: { dir: p.source.dir, sha256: p.source.sha256 }, targets: p.targets })));
    // the key, the certificate and every kernel's sign-file, before any build
    const signerLabels = { [LABEL_HOST]: deps.env.hostname, [LABEL_PID]: String(process.pid), [LABEL_INSTANCE]: currentInstance() };
    const signing = request.signing ? await checkSigning(request.signing, signingImages(catalog.images, plan), deps, signerLabels) : undefined;
    farm.upload(plan.sources.map((p) => p.source));
    deps.onEvent({ type: 'plan', source: plan.sources.map((p) => p.dir).join(' '), targets: plan.sources.flatMap((p) => p.targets), where: distributed?.where ?? 'this machine' });
    const { settled, farmWarnings } = await runWaves(plan, { farm, store, request, deps });
    refuseSameModule(settled.map((s) => ({ dir: s.planned.dir, identity: s.identity })));
    return await writeBuildOutputs({
      outDir,
      modules: settled.map((s) => ({ source: s.planned.source, identity: s.identity, results: s.results, warnings: s.warnings })),
      several: plan.several,
      startedAt,
      farmWarnings,
      ...(signing ? { signing: { setup: signing, labels: signerLabels } } : {}),
      ...(request.formats ? { formats: request.formats } : {}),
      ...(request.junitPath ? { junitPath: request.junitPath } : {}),
      // the history once --out holds the outputs: output.commit() runs this right after its one commit (a failed pack or verify records none)
      afterCommit: async () => {
        for (const { planned: p, results } of settled) {
          await recordHistory(
            deps.env.stateDir,
            p.source.dir,
            results.filter((r) => r.record.verdict !== 'failed').map((r) => r.record),
          );
        }
      },
      deps,
    });
  } finally {
    await farm.close();
  }
}

/** BUILD_DEPENDS: one wave of jobs after another, dependencies first, each module settled after its wave. */
async function runWaves(plan: BuildPlan<SourceArchive>, ctx: { farm: FarmOnDemand; store: ResultStore; request: BuildRequest; deps: BuildDeps }) {
  const { farm, deps } = ctx;
  const settledOf = new Map<number, Settled<JobResult>>();
  const farmWarnings: string[] = [];
  for (const wave of plan.waves) {
    const jobs = waveJobs(plan, wave, settledOf);
    const byPayload = new Map(jobs.map((j) => [j.payload, j]));
    const jobOf = (payload: JobPayload) => byPayload.get(payload) as PlannedJob<SourceArchive>;
    const { results: ran, warnings } = await runJobs({
      access: { session: farm.session, store: ctx.store },
      payloads: jobs.map((j) => j.payload),
      noCache: ctx.request.noCache,
      deps,
      keepSource: farm.keepSources(plan.sources.map((p) => p.source)),
      fatal: (r, payload) => (r.record.failedStage === 'add' ? unusableConf(r, jobOf(payload).planned.dir, jobOf(payload).planned.source) : undefined),
      label: (payload) => jobOf(payload).label,
      priority: (payload) => jobOf(payload).priority,
    });
    farmWarnings.push(...warnings);
    if (deps.signal.aborted) throw new KfarmError('INTERRUPTED', 'build interrupted; its containers were removed');
    // runJobs returns one result per payload, in payload order
    for (const p of wave)
      settledOf.set(
        p.index,
        settleModule(
          ran.filter((_, i) => jobs[i]?.planned === p),
          p.dir,
          p.source,
        ),
      );
  }
  return { settled: plan.sources.map((p) => ({ planned: p, ...(settledOf.get(p.index) as Settled<JobResult>) })), farmWarnings };
}

/** Each source's build history (`--kernels new`): what earlier builds of it covered here. */
async function readHistories(stateDir: string, sources: readonly SourceArchive[]): Promise<BuiltKernel[][]> {
  const histories: BuiltKernel[][] = [];
  for (const s of sources) histories.push((await readHistory(stateDir, s.dir))?.kernels ?? []);
  return histories;
}

/** --sign-key/--sign-cert: loaded only when asked for (openssl wrappers): a warm build is a few hundred ms. */
async function checkSigning(signing: NonNullable<BuildRequest['signing']>, images: KfarmImage[], deps: BuildDeps, labels: Record<string, string>) {
  return (await import('../signing/index.js')).checkSigningSetup({ ...signing, images, runtime: deps.runtime, labels });
}

/** The output dir is checked before any work: a build must not be lost to a typo in --out. */
async function usableOutDir(dir: string): Promise<string> {
  const outDir = path.resolve(dir);
  try {
    // not mkdir's recursive: it spins forever below /proc (util/make-dir.ts)
    await makeDirs(outDir);
    await access(outDir, constants.W_OK);
    return outDir;
  } catch (err) {
    throw new KfarmError('BAD_OPTION', `--out ${dir}: cannot write there (${(err as NodeJS.ErrnoException).code ?? describeError(err)})`, {
      context: { out: outDir },
      hint: 'Pass a directory kfarm can create or write to (default: dist).',
    });
  }
}

/** One kernel's job: what decides its result (source, kernel, image id, driver, options) and who asked. */
export function payloadFor(source: Pick<SourceArchive, 'sha256'>, target: KernelTarget, options: BuildOptions, buildId: string): JobPayload {
  return jobPayload(source, target, options, buildId, driverScript().sha256);
}
