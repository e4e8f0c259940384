import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import type { BuildOptions } from '../config/build-options.js';
import { driverScript } from '../dkms/driver-script.js';
import { KfarmError, describeError, isKfarmError } from '../errors/kfarm-error.js';
import { kernelTargets } from '../images/catalog.js';
import { parseSelector, selectKernels } from '../matrix/kernel-selector.js';
import type { KernelTarget } from '../matrix/kernel-target.js';
import type { JobPayload } from '../job/job-payload.js';
import { jobPriority } from '../queue/job-priority.js';
import { packSource, type SourceArchive } from '../source/source-archive.js';
import { makeDirs } from '../util/make-dir.js';
import { readHistory, recordHistory } from './build-history.js';
import { farmCatalog } from './farm-catalog.js';
import type { FarmSession } from './farm-session.js';
import { ResultStore } from '../store/result-store.js';
import { cacheBound } from '../store/size.js';
import { settleIdentity, type ModuleIdentity } from './module-identity.js';
import { runJobs, type JobResult } from './run-jobs.js';
import { writeBuildOutputs } from './write-build-outputs.js';
import type { BuildDeps, BuildOutcome, BuildRequest, NothingNew } from './build-types.js';
import { isInputRefusal, reportRefusal, type RefusedSource } from './refusal-report.js';
import { dependencyWaves, readDependsHint } from './dependency-order.js';
import { currentInstance } from '../process/instance.js';
import { LABEL_HOST, LABEL_INSTANCE, LABEL_PID } from '../worker/build-worker.js';

/** One source of the run: packed, with the kernels it builds for. */
interface PlannedSource {
  /** its place on the command line (dependency-order.ts works with these) */
  index: number;
  dir: string;
  source: SourceArchive;
  targets: KernelTarget[];
  /** how progress names its jobs: the kernel alone for a single source */
  label: string | undefined;
}

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
  const exclude = [{ path: request.outDir, what: '--out dir' }, { path: deps.env.stateDir, what: 'state dir' }];
  for (const dir of request.sourceDirs) {
    const packed = await packSource(dir, { exclude });
    for (const e of packed.excluded) deps.onEvent({ type: 'note', text: `${dir}: left ${e.path}/ out of the source (the ${e.what})` });
    sources.push(packed);
  }
  refuseRepeats(request.sourceDirs, sources);
  // BUILD_DEPENDS order the waves; a dependency no source provides, or a cycle, is decided per kernel by its release's dkms (in the driver)
  const order = dependencyWaves(sources.map((s, i) => ({ dir: request.sourceDirs[i] as string, hint: readDependsHint(s.dkmsConf.toString('utf8')) })));
  const several = sources.length > 1;
  const outDir = await usableOutDir(request.outDir);

  // The farm session (Redis, workers) opens on the first job the result store does not hold:
  // a warm run starts no Redis at all. With REDIS_URL the catalog is the farm's, so it opens now.
  let opening: Promise<FarmSession> | undefined;
  /** the sources jobs will need, once planned; each goes up once the session is open */
  let uploads: SourceArchive[] = [];
  const uploaded = new Set<string>();
  const openSession = () =>
    (opening ??= (async () => {
      const { openFarmSession } = await import('./farm-session.js');
      return openFarmSession({ ...deps, concurrency: request.concurrency });
    })());
  const session = async () => {
    const s = await openSession();
    for (const source of uploads.filter((u) => !uploaded.has(u.sha256))) {
      const blob = await s.blobs.put(source.tar, SOURCE_TTL_SECONDS);
      uploaded.add(source.sha256);
      deps.logger.info({ source: source.dir, sha256: blob.sha256, files: source.files }, 'source uploaded');
    }
    return s;
  };
  const store = ResultStore.under(deps.env.stateDir, cacheBound(request.cacheSize, deps.env.cacheSize), deps.logger);
  try {
    const distributed = deps.env.redisUrl ? await session() : undefined;
    const catalog = await farmCatalog({
      runtime: deps.runtime,
      farm: distributed ? { redis: distributed.queue.redis, queueName: deps.env.queueName, where: distributed.where } : undefined,
    });
    for (const conflict of catalog.conflicts) deps.onEvent({ type: 'warning', text: conflict });
    deps.logger.info({ from: catalog.from, images: catalog.images.map((i) => i.name) }, 'kernels listed');
    const selector = request.kernels ?? deps.env.defaultKernels ?? 'all';
    const wantsNew = parseSelector(selector).some((t) => t.kind === 'new');
    const held = kernelTargets(catalog.images);
    const planned: PlannedSource[] = [];
    for (const [i, source] of sources.entries()) {
      let targets: KernelTarget[];
      try {
        targets = selectKernels(selector, held, wantsNew ? { lastBuilt: (await readHistory(deps.env.stateDir, source.dir))?.kernels ?? [] } : {});
      } catch (err) {
        // a nightly `--kernels new` with nothing new for this source has done its job: not an error
        if (wantsNew && isKfarmError(err, 'KERNEL_SELECTOR_EMPTY')) continue;
        throw err;
      }
      planned.push({ index: i, dir: request.sourceDirs[i] as string, source, targets, label: several ? path.basename(source.dir) : undefined });
    }
    if (planned.length === 0) return { nothingNew: true, held: held.length };
    known.push(...planned.map((p) => ({ dir: p.dir, source: { dir: p.source.dir, sha256: p.source.sha256 }, targets: p.targets })));
    // the key, the certificate and every kernel's sign-file, before any build
    const signerLabels = { [LABEL_HOST]: deps.env.hostname, [LABEL_PID]: String(process.pid), [LABEL_INSTANCE]: currentInstance() };
    const wanted = new Set(planned.flatMap((p) => p.targets.map((t) => `${t.image}\0${t.kernel}`)));
    const signing = request.signing
      ? await (await import('../signing/index.js')).checkSigningSetup({
          ...request.signing,
          images: catalog.images.map((i) => ({ ...i, kernels: i.kernels.filter((k) => wanted.has(`${i.name}\0${k}`)) })).filter((i) => i.kernels.length > 0),
          runtime: deps.runtime,
          labels: signerLabels,
        })
      : undefined;
    uploads = planned.map((p) => p.source);
    deps.onEvent({
      type: 'plan',
      source: planned.map((p) => p.dir).join(' '),
      targets: planned.flatMap((p) => p.targets),
      where: distributed?.where ?? 'this machine',
    });

    const buildId = `${planned.map((p) => path.basename(p.source.dir)).join('+').slice(0, 200)}-${Date.now().toString(36)}`;
    const label = (payload: JobPayload, p: PlannedSource) => (p.label ? `${p.label}: ${payload.kernel}` : payload.kernel);
    // BUILD_DEPENDS: one wave of jobs after another, dependencies first (see dependency-order.ts)
    const settledOf = new Map<PlannedSource, Settled>();
    const farmWarnings: string[] = [];
    for (const wave of order.waves) {
      const inWave = wave.flatMap((i) => planned.filter((p) => p.index === i));
      if (inWave.length === 0) continue;
      const jobs: Array<{ planned: PlannedSource; payload: JobPayload }> = [];
      for (const p of inWave) {
        const needs = (order.depends[p.index] ?? []).map((d) => ({ dir: request.sourceDirs[d] as string, settled: [...settledOf].find(([q]) => q.index === d)?.[1] }));
        for (const t of p.targets) {
          const payload = payloadFor(p.source, t, request.options, buildId);
          // the dependencies built on this kernel; one that is not is the driver's to judge, as the kernel's release's dkms does
          const onKernel = needs.flatMap((n) => {
            const result = n.settled?.results.find((r) => r.record.kernel === t.kernel && r.record.image === t.image);
            return n.settled && result?.record.verdict === 'built' ? [{ ...n, result }] : [];
          });
          if (onKernel.length > 0) {
            payload.dependsOn = onKernel.map((n) => ({
              name: n.settled?.identity.name ?? '',
              version: n.settled?.identity.version ?? '',
              ...(n.result?.record.symvers ? { symvers: n.result.record.symvers } : {}),
            }));
          }
          jobs.push({ planned: p, payload });
        }
      }
      const ofPayload = new Map(jobs.map((j) => [j.payload, j.planned]));
      const plannedOf = (payload: JobPayload) => ofPayload.get(payload) as PlannedSource;
      const { results: ran, warnings } = await runJobs({
        access: { session, store },
        payloads: jobs.map((j) => j.payload),
        noCache: request.noCache,
        deps,
        keepSource: keepSources(session, planned.map((p) => p.source)),
        fatal: (r, payload) => (r.record.failedStage === 'add' ? unusableConf(r, plannedOf(payload).dir, plannedOf(payload).source) : undefined),
        label: (payload) => label(payload, plannedOf(payload)),
        priority: (payload) => jobPriority(plannedOf(payload).source.compileUnits),
      });
      farmWarnings.push(...warnings);
      if (deps.signal.aborted) throw new KfarmError('INTERRUPTED', 'build interrupted; its containers were removed');
      for (const p of inWave) {
        // runJobs returns one result per payload, in payload order
        const mine = ran.filter((_, i) => jobs[i]?.planned === p);
        settledOf.set(p, moduleOf(mine, p.dir, p.source));
      }
    }
    const settled = planned.map((p) => ({ planned: p, ...(settledOf.get(p) as Settled) }));
    refuseSameModule(settled.map((s) => ({ dir: s.planned.dir, identity: s.identity })));
    return await writeBuildOutputs({
      outDir,
      modules: settled.map((s) => ({ source: s.planned.source, identity: s.identity, results: s.results, warnings: s.warnings })),
      several,
      startedAt,
      farmWarnings,
      ...(signing ? { signing: { setup: signing, labels: signerLabels } } : {}),
      ...(request.formats ? { formats: request.formats } : {}),
      ...(request.junitPath ? { junitPath: request.junitPath } : {}),
      // the history once report.json is written, before the packages: a failed pack keeps it
      afterReports: async () => {
        for (const { planned: p, results } of settled) {
          await recordHistory(deps.env.stateDir, p.source.dir, results.filter((r) => r.record.verdict !== 'failed').map((r) => r.record));
        }
      },
      deps,
    });
  } finally {
    const opened = await opening?.catch(() => undefined);
    await opened?.close();
  }
}

/** The same source twice would be the same jobs twice and one module's outputs written twice. */
function refuseRepeats(dirs: readonly string[], sources: readonly SourceArchive[]): void {
  const seen = new Map<string, string>();
  for (const [i, s] of sources.entries()) {
    const dir = dirs[i] as string;
    const other = seen.get(s.sha256) ?? seen.get(s.dir);
    if (other !== undefined) {
      throw new KfarmError('BAD_OPTION', `${dir} and ${other} are the same module source: give each source once`, {
        context: { source: s.dir, sha256: s.sha256 },
        hint: 'kfarm build <source-dir>... builds each source once; a source named twice (or two identical copies) would build the same jobs twice.',
      });
    }
    seen.set(s.sha256, dir);
    seen.set(s.dir, dir);
  }
}

/** DKMS holds one module per name and version: two sources that are both name/version would overwrite each other's outputs. */
function refuseSameModule(modules: ReadonlyArray<{ dir: string; identity: ModuleIdentity }>): void {
  const seen = new Map<string, string>();
  for (const { dir, identity } of modules) {
    const key = `${identity.name}/${identity.version}`;
    const other = seen.get(key);
    if (other !== undefined) {
      throw new KfarmError('BAD_OPTION', `${dir} and ${other} are both ${key}: DKMS holds one module per name and version`, {
        context: { module: identity.name, version: identity.version },
        hint: 'Build them in separate runs (with separate --out), or give one of them another PACKAGE_VERSION.',
      });
    }
    seen.set(key, dir);
  }
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

/**
 * Who the module is, from what dkms.conf said on each kernel. A dkms.conf that no kernel
 * could use is bad input (exit 2, nothing built); one that fails on some kernels only is
 * those kernels' verdict.
 */
interface Settled {
  identity: ModuleIdentity;
  results: JobResult[];
  warnings: string[];
}

function moduleOf(ran: JobResult[], sourceDir: string, source: SourceArchive): Settled {
  const first = ran[0];
  if (first && ran.every((r) => r.record.verdict === 'failed' && r.record.reason === 'bad-conf')) throw unusableConf(first, sourceDir, source);
  const settled = settleIdentity(ran);
  const warnings = [...new Set(ran.flatMap((r) => r.record.warnings ?? []))];
  if (settled.identity) return { identity: settled.identity, results: settled.results, warnings };
  // No result or log says the name (the farm could not run the jobs, or a build cut short used a MAKE and CLEAN without its build dir).
  warnings.push("no kernel's result or log says the module's name and version: the report is named after the source directory");
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

/** One kernel's job: what decides its result (source, kernel, image id, driver, options) and who asked. */
export function payloadFor(source: Pick<SourceArchive, 'sha256'>, target: KernelTarget, options: BuildOptions, buildId: string): JobPayload {
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

/**
 * Sources are the biggest blobs and only needed while jobs wait for them: a day, kept alive
 * by the coordinator waiting on them, and put again if Redis lost it (a restart without data).
 */
const SOURCE_TTL_SECONDS = 24 * 3600;

function keepSources(open: () => Promise<FarmSession>, sources: readonly SourceArchive[]): () => Promise<void> {
  return async () => {
    const session = await open();
    for (const source of sources) {
      if (!(await session.blobs.touch(source.sha256, SOURCE_TTL_SECONDS))) await session.blobs.put(source.tar, SOURCE_TTL_SECONDS);
    }
  };
}

