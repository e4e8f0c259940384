import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describeError, isKfarmError, type KfarmError } from '../errors/kfarm-error.js';
import { kernelTargets } from '../images/catalog.js';
import { parseSelector, selectKernels } from '../matrix/kernel-selector.js';
import type { KernelTarget } from '../matrix/kernel-target.js';
import { buildReport, type BuildReport } from '../report/report.js';
import { writeReports } from '../report/write-reports.js';
import { insideDir } from '../util/inside-dir.js';
import { toolVersion } from '../version.js';
import type { BuildDeps, BuildRequest } from './build-types.js';
import { readHistory } from './build-history.js';
import { combineReports } from './combined-report.js';
import { farmCatalog } from './farm-catalog.js';
import { coordinatorFailure } from './run-jobs.js';
import type { Reason } from '../dkms/verdicts.js';
import { makeDirs } from '../util/make-dir.js';

/**
 * A module input kfarm refuses (exit 2) still gets its report: a CI step that publishes test
 * results must find every requested kernel failed, with the reason, not nothing. Refusals of
 * the module's own input only: a dkms.conf that is missing or unusable (no kernel could use it,
 * a symlink leading out of the tree), a source tree kfarm will not pack (a fifo, a device, more
 * than 256 MiB). Not a source directory that does not exist (nothing names a module there, like
 * a mistyped option), bad options, a selector that matches nothing, an --out that cannot be
 * written, or the environment: those exit as they did, with no report.
 */
const REFUSED_INPUT = new Set(['DKMS_CONF_MISSING', 'DKMS_CONF_INVALID', 'UNSAFE_ARCHIVE', 'SOURCE_TOO_LARGE']);

export function isInputRefusal(err: unknown): err is KfarmError {
  return isKfarmError(err) && REFUSED_INPUT.has(err.code);
}

/** The row's reason: the report's fixed words (README "Failure reasons"). */
export function refusalReason(err: KfarmError): Extract<Reason, 'bad-conf' | 'bad-source'> {
  return err.code === 'DKMS_CONF_MISSING' || err.code === 'DKMS_CONF_INVALID' ? 'bad-conf' : 'bad-source';
}

export interface RefusedSource {
  /** as given on the command line */
  dir: string;
  /** the source's absolute path and sha256, when it was packed */
  source: { dir: string; sha256: string } | undefined;
  targets: readonly KernelTarget[];
}

/**
 * Writes report.json, junit.xml and report.html (and --junit) for a refused run: one failed
 * row per (source, requested kernel), whose log says what was refused and why. Nothing is built
 * or packaged, so the module is named after its directory and its version is `unknown`.
 */
export async function writeRefusalReport(input: {
  outDir: string;
  sources: readonly RefusedSource[];
  error: KfarmError;
  startedAt: Date;
  junitPath?: string | undefined;
}): Promise<BuildReport> {
  const { outDir, error } = input;
  const several = input.sources.length > 1;
  const firstLine = error.message.split('\n')[0] ?? error.message;
  const text = Buffer.from(
    [`[kfarm] not built: kfarm refused the module input (exit 2), nothing was built or packaged`, error.message, ...(error.hint ? [error.hint] : [])]
      .flatMap((t) => t.split('\n'))
      .map((l) => (l.startsWith('[kfarm] ') ? l : `[kfarm] ${l}`))
      .join('\n') + '\n',
  );
  const log = { sha256: createHash('sha256').update(text).digest('hex'), size: text.length };
  const reports: BuildReport[] = [];
  for (const s of input.sources) {
    const name = path.basename(s.source?.dir ?? path.resolve(s.dir));
    const logDir = several ? ['logs', `${name}-unknown`] : ['logs'];
    await makeDirs(insideDir(outDir, ...logDir));
    const results = [];
    for (const t of s.targets) {
      const logPath = insideDir(outDir, ...logDir, `${t.kernel}.log`);
      await writeFile(logPath, text);
      const record = coordinatorFailure(t, { reason: refusalReason(error), message: error.message, firstError: firstLine, log });
      results.push({ record, cached: false, logPath, tarball: undefined });
    }
    reports.push(
      buildReport({
        toolVersion,
        module: name,
        version: 'unknown',
        source: s.source ?? { dir: path.resolve(s.dir), sha256: '' },
        startedAt: input.startedAt,
        finishedAt: new Date(),
        outDir,
        results,
        fullTarball: undefined,
        warnings: [],
      }),
    );
  }
  const report = combineReports(reports, { startedAt: input.startedAt, finishedAt: new Date() });
  await writeReports(outDir, report, input.junitPath ? { junit: input.junitPath } : {});
  return report;
}

/**
 * After a refusal: the report, when the kernels are known (`planned`, or listed now as the build
 * would have: the farm's catalog and the selector) and --out can be written (`outDir`). Anything
 * that keeps it from being written is logged, never thrown: the refusal is the news (exit 2).
 */
export async function reportRefusal(
  error: KfarmError,
  ctx: { request: BuildRequest; deps: BuildDeps; startedAt: Date; planned: readonly RefusedSource[]; outDir: () => Promise<string> },
): Promise<void> {
  const { request, deps } = ctx;
  try {
    const outDir = await ctx.outDir();
    const sources = ctx.planned.length > 0 ? ctx.planned : await requestedKernels(request, deps);
    if (sources.length === 0) return;
    await writeRefusalReport({ outDir, sources, error, startedAt: ctx.startedAt, junitPath: request.junitPath });
    deps.onEvent({
      type: 'note',
      text: `every requested kernel is failed in the report (${refusalReason(error)}): ${path.join(request.outDir, 'report.json')}, junit.xml, report.html`,
    });
  } catch (err) {
    deps.logger.warn({ err: describeError(err) }, 'the refused input got no report: its kernels or the out dir are not known');
  }
}

/** The kernels each source would have been built for, chosen as runBuild chooses them. */
async function requestedKernels(request: BuildRequest, deps: BuildDeps): Promise<RefusedSource[]> {
  const images = await catalogImages(deps);
  const selector = request.kernels ?? deps.env.defaultKernels ?? 'all';
  const wantsNew = parseSelector(selector).some((t) => t.kind === 'new');
  const held = kernelTargets(images);
  const sources: RefusedSource[] = [];
  for (const dir of request.sourceDirs) {
    const lastBuilt = wantsNew ? ((await readHistory(deps.env.stateDir, path.resolve(dir)))?.kernels ?? []) : [];
    try {
      sources.push({ dir, source: undefined, targets: selectKernels(selector, held, wantsNew ? { lastBuilt } : {}) });
    } catch (err) {
      if (!(wantsNew && isKfarmError(err, 'KERNEL_SELECTOR_EMPTY'))) throw err;
    }
  }
  return sources;
}

/** The farm's images: those of REDIS_URL's workers, else the local engine's. */
async function catalogImages(deps: BuildDeps) {
  const url = deps.env.redisUrl;
  if (!url) return (await farmCatalog({ runtime: deps.runtime, farm: undefined })).images;
  // loaded only here: a build without REDIS_URL never loads ioredis
  const { closeConnection, connectChecked, describeTarget } = await import('../queue/redis-connection.js');
  const redis = await connectChecked({ url });
  try {
    return (await farmCatalog({ runtime: deps.runtime, farm: { redis, queueName: deps.env.queueName, where: describeTarget({ url }) } })).images;
  } finally {
    closeConnection(redis);
  }
}
