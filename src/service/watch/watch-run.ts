import type { Logger } from 'pino';
import { archiveCacheDir, type ArchiveSource } from '../../archive/archive-source.js';
import type { DebianArch, ReleaseSpec } from '../../archive/releases.js';
import { describeError } from '../../errors/kfarm-error.js';
import type { ContainerRuntime } from '../../executor/runtime.js';
import { kernelTargets, listKfarmImages } from '../../images/catalog.js';
import { syncImages } from '../../images/image-sync.js';
import type { BuildRunner } from '../builds/build-runner.js';
import type { FarmDb, ResultRow } from '../farm-db.js';
import { checkArchive } from './archive-check.js';
import { planWatch } from './watch-plan.js';
import { pruneGone } from './prune-gone.js';

export interface WatchConfig {
  releases: readonly ReleaseSpec[];
  arches: readonly DebianArch[];
  /** flavours to follow (empty: every flavour the archive offers) */
  flavours: readonly string[];
  source: ArchiveSource;
  /** remove what the archive stopped offering this long ago (ms; serve's --prune-gone-after); default never */
  pruneGoneAfter?: number;
}

export interface WatchDeps {
  db: FarmDb;
  runner: BuildRunner;
  runtime: ContainerRuntime;
  logger: Logger;
  stateDir: string;
  config: WatchConfig;
  /** a farm fault (the archive unreachable or unverified, a sync failing): for the webhook */
  onFault?: (kind: string, message: string, subject?: string) => void;
}

export interface WatchRun {
  baseline: boolean;
  offered: number;
  added: string[];
  synced: string[];
  syncFailed: Array<{ kernel: string; error: string }>;
  builds: Array<{ module: string; id: string; kernels: string[] }>;
  /** gone kernels whose images this run removed (--prune-gone-after) */
  pruned: string[];
}

/**
 * One run of the watch: look at the archive (one InRelease GET per suite when nothing changed),
 * record what it offers, sync the images of new kernels, and queue a build of every registered
 * module for the new kernels it has no result for (the runner builds, publishes, notifies).
 * With pruneGoneAfter, kernels gone from the archive that long lose their image first.
 * The archive unreachable or its signature bad fails the run loudly; the farm keeps serving
 * what it has and the next run tries again.
 */
export async function watchOnce(deps: WatchDeps): Promise<WatchRun> {
  const { db, config, logger } = deps;
  const check = await checkArchive(config.source, config.releases, config.arches, deps.stateDir, logger);
  const baseline = db.kernels.list().length === 0;
  const now = new Date().toISOString();
  db.kernels.observe(
    check.kernels.map((k) => ({ kernel: k.kernel, release: k.release, arch: k.arch, flavour: k.flavour, version: k.version })),
    now,
  );
  const run: WatchRun = { baseline, offered: check.kernels.length, added: [], synced: [], syncFailed: [], builds: [], pruned: [] };
  if (baseline) {
    logger.info({ offered: check.kernels.length }, 'first look at the archive: its kernels are the baseline; kernels that appear from now on are built');
    return run;
  }
  // before the sync: a pruned image frees the disk the new ones need
  run.pruned = await pruneGone({ db, runtime: deps.runtime, logger, afterMs: config.pruneGoneAfter, now });
  const held = async () => new Set(kernelTargets(await listKfarmImages(deps.runtime)).map((t) => t.kernel));
  const modules = db.modules.list();
  const results = new Map<string, ResultRow[]>(modules.map((m) => [m.name, db.results.history(m.name)]));
  const input = { seen: db.kernels.list(), flavours: config.flavours, modules, results, unfinished: db.builds.unfinished() };
  const first = planWatch({ ...input, held: await held() });
  run.added = first.sync;
  if (first.sync.length > 0) {
    const releases = config.releases.filter((r) => input.seen.some((k) => first.sync.includes(k.kernel) && k.release === r.name));
    const result = await syncImages(
      deps.runtime,
      {
        releases,
        arches: config.arches,
        kernels: first.sync.join(','),
        prune: false,
        archiveCacheDir: archiveCacheDir(deps.stateDir, config.source.mirrors),
        mirrors: config.source.mirrors,
        ...(config.source.keyring ? { keyring: config.source.keyring } : {}),
      },
      logger,
      (line) => logger.info({ sync: line }, 'watch sync'),
    );
    run.synced = result.added;
    run.syncFailed = result.failed.map((f) => ({ kernel: f.kernel, error: f.error }));
    for (const f of result.failed) deps.onFault?.('sync-failed', `the image of ${f.kernel} did not build: ${f.error}`, f.kernel);
  }
  // planned again with the images the sync made
  const plan = planWatch({ ...input, held: await held() });
  for (const b of plan.builds) {
    try {
      const row = deps.runner.submit({
        module: b.module.name,
        sourceSha256: b.module.sourceSha256,
        kernels: b.kernels.join(','),
        formats: b.module.settings.formats,
        trigger: 'watch',
        ...(b.module.settings.verify ? { verify: b.module.settings.verify } : {}),
      });
      run.builds.push({ module: b.module.name, id: row.id, kernels: b.kernels });
    } catch (err) {
      logger.error({ module: b.module.name, err: describeError(err) }, 'the watch could not queue a build');
    }
  }
  logger.info({ added: run.added, synced: run.synced, builds: run.builds.map((b) => b.id), pruned: run.pruned }, 'watch run done');
  return run;
}
