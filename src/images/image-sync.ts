import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { discoverKernels, type DiscoveredKernel, type Discovery } from '../archive/discover.js';
import { selectKernels } from '../matrix/kernel-selector.js';
import type { KernelTarget } from '../matrix/kernel-target.js';
import { unameArch, type DebianArch, type Mirror, type ReleaseSpec } from '../archive/releases.js';
import { ARCHIVE_UNREACHABLE, usableKeyring } from '../archive/index-store.js';
import { usesDebianMirrors } from '../archive/archive-source.js';
import type { ArchiveBuildSource } from './archive-recipe.js';
import type { ContainerRuntime } from '../executor/runtime.js';
import { KfarmError, describeError, isKfarmError } from '../errors/kfarm-error.js';
import { mapLimit } from '../util/map-limit.js';
import { ensureBaseImage } from './base-image.js';
import { listKfarmImages } from './catalog.js';
import { KERNEL_BUILD_CONCURRENCY, RECIPE_ARCHES, RECIPES, currentRecipeFiles, ensureKernelImage, ensureToolchain, loadRecipe, type Recipe } from './image-builder.js';
import { errorChainText, saysNoSpace, watchBuildLines } from './sync-faults.js';
import { describePlan, planSync, type SyncPlan } from './sync-plan.js';
import { missingPackages } from './missing-dependencies.js';
import { stageOfRelease } from '../matrix/release-stages.js';
import { removeKernelImage } from './remove-kernel-image.js';

export interface SyncRequest {
  releases: readonly ReleaseSpec[];
  arches: readonly DebianArch[];
  flavours?: readonly string[];
  /** a kernel selector (`--kernels`) limiting what is added */
  kernels?: string;
  prune: boolean;
  baseImage?: string;
  archiveCacheDir: string;
  /** the archive mirrors to read indexes from (default Debian's) */
  mirrors?: Readonly<Record<Mirror, string>>;
  /** the keyring the mirrors' InRelease files are checked with (default: usableKeyring()'s) */
  keyring?: string;
  /** what the archive offers, when the caller has already asked it (tests stand in an archive that dropped a kernel) */
  discovery?: Discovery;
}

export interface SyncResult {
  plan: SyncPlan;
  added: string[];
  failed: Array<{ kernel: string; error: string; noSpace: boolean }>;
  /** kernels never started: the engine's disk filled first */
  notStarted: string[];
  pruned: string[];
  /** pre-release kernels whose headers depend on packages their suite does not have yet: not added, tried again next sync */
  waiting: Array<{ kernel: string; release: string; missing: string[] }>;
}

/** Where the adding stands, for a live status line. */
export interface SyncCounts {
  added: number;
  running: number;
  queued: number;
  failed: number;
  total: number;
  /** since the first kernel build started */
  elapsedMs: number;
}

export interface SyncOutput {
  /** a permanent line: the plan, skips, warnings, prunes, and each kernel as it ends */
  say: (line: string, kind?: 'added' | 'failed') => void;
  /** the counts changed (a kernel started or ended) */
  progress?: (counts: SyncCounts) => void;
}

/**
 * `kfarm images sync`: plan (held against what the archive offers), then add each missing
 * kernel's image, a few at once, and with --prune drop the kernels the archive no longer
 * offers. One kernel failing leaves no image for it and does not stop the others; a full
 * engine disk does: no kernel starts after one failed for "no space left on device", and the
 * sync ends with DISK_FULL's message (code IMAGE_BUILD_FAILED) once the running ones end.
 * An unreachable archive ends it before any image is touched.
 */
export async function syncImages(runtime: ContainerRuntime, request: SyncRequest, baseLogger: Logger, output: SyncOutput | ((line: string) => void)): Promise<SyncResult> {
  const out: SyncOutput = typeof output === 'function' ? { say: output } : output;
  const say = (line: string) => out.say(line);
  for (const r of request.releases) {
    if (!(RECIPES as readonly string[]).includes(r.name)) {
      throw new KfarmError('BAD_OPTION', `kfarm has no image recipe for ${r.name} yet`, { context: { release: r.name }, hint: `Image recipes: ${RECIPES.join(', ')}.` });
    }
  }
  for (const a of request.arches) {
    if (!(RECIPE_ARCHES as readonly string[]).includes(a)) {
      throw new KfarmError('BAD_OPTION', `kfarm cannot build images for ${a} yet`, { context: { arch: a }, hint: `Arches: ${RECIPE_ARCHES.join(', ')}.` });
    }
  }
  await runtime.ping();
  // every recipe in scope, read once: the plan judges held images by them, the adds build from them
  const recipes = new Map(await Promise.all(request.releases.map(async (r) => [r.name, await loadRecipe(r.name)] as const)));
  const held = await listKfarmImages(runtime);
  const discovery = request.discovery ?? (await discover(request, held.length, baseLogger));
  for (const w of discovery.warnings) say(`warning: ${w}`);
  const selected = request.kernels === undefined ? undefined : selectKernels(request.kernels, discovery.kernels.map(asTarget)).map((t) => t.kernel);
  const plan = planSync(held, discovery.kernels, {
    releases: request.releases.map((r) => r.name),
    arches: request.arches,
    ...(request.flavours ? { flavours: request.flavours } : {}),
    ...(selected ? { kernels: selected } : {}),
    prune: request.prune,
    recipes: await currentRecipes(recipes, request.arches),
  });
  say(describePlan(plan));
  for (const k of plan.unfetchable) say(`skipped ${k.kernel} (${k.release}): not fetchable: ${k.fetch.fetchable ? 'unknown' : k.fetch.reason}`);
  for (const image of plan.outdated)
    say(
      `${image.kernels[0] ?? '?'} (${image.name}) was built by an older recipe: kept as it is; \`kfarm images sync ${image.name} --kernels '${image.kernels[0] ?? '?'}'\` rebuilds it`,
    );
  for (const image of plan.gone)
    say(`${image.kernels[0] ?? '?'} (${image.name}) is no longer offered by the archive: kept; \`kfarm images sync ${image.name} --prune\` removes it`);
  const result: SyncResult = { plan, added: [], failed: [], notStarted: [], pruned: [], waiting: [] };

  // build output lines that said "no space", by kernel (or toolchain ref)
  const noSpace = new Set<string>();
  // the last build lines per kernel (or cross toolchain ref), where apt says what a pre-release kernel that is early lacks (missing-dependencies.ts)
  const aptErrors = new Map<string, string[]>();
  const logger = watchBuildLines(baseLogger, (key, line) => {
    if (saysNoSpace(line)) noSpace.add(key);
    aptErrors.set(key, [...(aptErrors.get(key) ?? []), line].slice(-100));
  });
  let diskFull: { during: string } | undefined;

  if (plan.add.length > 0) {
    const toolchains = new Map<string, Awaited<ReturnType<typeof ensureToolchain>>>();
    for (const release of new Set(plan.add.map((k) => k.release))) {
      const recipe = recipes.get(release);
      if (!recipe) continue; // planSync adds only releases in scope
      const base = request.baseImage ?? (await ensureBaseImage(runtime, logger, say, recipe.release.codename));
      try {
        toolchains.set(release, await ensureToolchain(runtime, recipe, base, logger, say));
      } catch (err) {
        if (noSpace.size === 0 && !saysNoSpace(errorChainText(err))) throw err;
        result.notStarted.push(...plan.add.map((k) => k.kernel));
        throw diskFullError(result, `the ${release} toolchain image`);
      }
    }
    const archive = await archiveBuildSources(request, discovery);
    const started = Date.now();
    const counts = { added: 0, running: 0, failed: 0 };
    const report = () =>
      out.progress?.({
        ...counts,
        queued: plan.add.length - counts.added - counts.failed - counts.running - result.notStarted.length - result.waiting.length,
        total: plan.add.length,
        elapsedMs: Date.now() - started,
      });
    let done = 0;
    // a pre-release kernel that failed because apt found not all its dependencies in the suite yet: those packages
    const early = (k: DiscoveredKernel, err: unknown): string[] =>
      stageOfRelease(k.release) === 'pre-release' && noSpace.size === 0
        ? missingPackages([
            ...(aptErrors.get(k.kernel) ?? []),
            ...[...aptErrors].filter(([key]) => key.startsWith(`kfarm/${k.release}-toolchain:`)).flatMap(([, lines]) => lines),
            ...errorChainText(err).split(' | '),
          ])
        : [];
    await mapLimit(plan.add, KERNEL_BUILD_CONCURRENCY, async (k) => {
      const recipe = recipes.get(k.release);
      const toolchain = toolchains.get(k.release);
      if (!recipe || !toolchain) return;
      if (diskFull) {
        result.notStarted.push(k.kernel);
        report();
        return;
      }
      counts.running++;
      report();
      try {
        const image = await ensureKernelImage(runtime, recipe, toolchain, k, logger, archive.get(k.release)).catch(async (err: unknown) => {
          // A DNS or mirror hiccup fails about one kernel in a hundred here, past apt's own
          // retries: one more try after a pause, unless the disk is full (that stops the sync).
          if (diskFull || noSpace.size > 0 || saysNoSpace(errorChainText(err)) || early(k, err).length > 0) throw err;
          logger.warn({ kernel: k.kernel, err: describeError(err) }, 'kernel image failed; trying once more');
          await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
          return ensureKernelImage(runtime, recipe, toolchain, k, logger, archive.get(k.release));
        });
        done++;
        counts.running--;
        counts.added++;
        result.added.push(k.kernel);
        out.say(
          `[${done}/${plan.add.length}] ${k.kernel} (${k.release}, headers ${k.version}): ${image.built ? `${k.recipeChanged ? 'rebuilt (recipe changed)' : 'added'} in ${Math.round(image.ms / 1000)}s` : 'already current'}`,
          'added',
        );
      } catch (err) {
        done++;
        counts.running--;
        const missing = early(k, err);
        if (missing.length > 0) {
          result.waiting.push({ kernel: k.kernel, release: k.release, missing });
          out.say(
            `[${done}/${plan.add.length}] ${k.kernel} (${k.release}): waiting: its headers depend on ${missing.join(', ')}, not in ${k.suite} yet; not added, the next sync tries again`,
            'failed',
          );
          report();
          return;
        }
        counts.failed++;
        // the disk is the engine's: a no-space line from any build (this kernel's, a cross toolchain's) means it is full
        const full = noSpace.size > 0 || saysNoSpace(errorChainText(err));
        if (full) diskFull ??= { during: k.kernel };
        result.failed.push({ kernel: k.kernel, error: describeError(err), noSpace: full });
        out.say(`[${done}/${plan.add.length}] ${k.kernel} (${k.release}): FAILED${full ? " (the engine's disk is full)" : ''}: ${describeError(err)}`, 'failed');
      }
      report();
    });
  }

  for (const image of plan.prune) {
    const removed = await removeKernelImage(runtime, image);
    const tags = removed.tags;
    if (removed.ok) {
      result.pruned.push(image.kernels[0] ?? image.ref);
      say(`pruned ${image.kernels[0] ?? '?'} (${tags.join(', ')})`);
    } else {
      say(`could not prune ${image.kernels[0] ?? '?'}: ${removed.output}`);
    }
  }
  if (diskFull) throw diskFullError(result, diskFull.during);
  return result;
}

/** The recipe-files hash each (release, arch) in scope gets now: held images with another are rebuilt. */
async function currentRecipes(recipes: ReadonlyMap<string, Recipe>, arches: readonly DebianArch[]): Promise<Map<string, string>> {
  const hashes = new Map<string, string>();
  for (const [name, recipe] of recipes) for (const arch of arches) hashes.set(`${name}/${arch}`, await currentRecipeFiles(recipe, arch));
  return hashes;
}

/** the pause before a failed kernel image's second try */
const RETRY_PAUSE_MS = 5_000;

/**
 * The archive's indexes. Unreachable, sync stops before touching any image; it does not go on
 * from the cached indexes: every kernel it would add downloads its headers from the archive
 * anyway, and pruning from an index of another day could remove kernels still offered.
 */
async function discover(request: SyncRequest, heldCount: number, logger: Logger): Promise<Discovery> {
  try {
    return await discoverKernels(request.releases, request.arches, {
      cacheDir: request.archiveCacheDir,
      logger,
      ...(request.mirrors ? { mirrors: request.mirrors } : {}),
      ...(request.keyring ? { keyring: request.keyring } : {}),
    });
  } catch (err) {
    if (!isKfarmError(err, 'COMMAND_FAILED') || err.context.reason !== ARCHIVE_UNREACHABLE) throw err;
    throw new KfarmError('COMMAND_FAILED', `${err.message}; nothing was synced`, {
      cause: err,
      context: { ...err.context },
      hint:
        `No image was added or removed: the ${heldCount} kernel(s) held stay as they were and \`kfarm build\` still uses them. ` +
        `Check the network (and any proxy) from this machine to ${hostOf(err.context.url)};` +
        ' with --mirror/--security-mirror, that the mirror is up and serves dists/<suite>/InRelease. ' +
        "Sync does not go on from the indexes cached in $KFARM_STATE_DIR/archive: each kernel it adds downloads its headers from the archive, and a prune needs today's index. Rerun once the archive answers.",
    });
  }
}

/**
 * Per release, the mirror its kernel images install from when it is not Debian's: the suites
 * discovery read there and the keyring it checked them with. Debian's mirrors: none (the
 * recipes' own sources, so those images keep their cache hash).
 */
async function archiveBuildSources(request: SyncRequest, discovery: Discovery): Promise<Map<string, ArchiveBuildSource>> {
  const sources = new Map<string, ArchiveBuildSource>();
  if (!request.mirrors || usesDebianMirrors(request.mirrors)) return sources;
  const keyring = await readFile(await usableKeyring(request.keyring));
  for (const release of request.releases) {
    const served = new Set(discovery.indexes.filter((i) => i.release === release.name).map((i) => i.suite));
    sources.set(release.name, { mirrors: request.mirrors, keyring, suites: release.suites.filter((s) => served.has(s.suite)) });
  }
  return sources;
}

const hostOf = (url: unknown): string => {
  try {
    return new URL(String(url)).host;
  } catch {
    return 'the archive';
  }
};

function diskFullError(result: SyncResult, during: string): KfarmError {
  const total = result.plan.add.length;
  const failed = result.failed.map((f) => f.kernel);
  return new KfarmError(
    'IMAGE_BUILD_FAILED',
    `the Docker engine's disk is full ("no space left on device" while building ${during}): sync stopped after adding ${result.added.length} of ${total} kernel(s)` +
      `${failed.length ? `; failed: ${failed.join(', ')}` : ''}${result.notStarted.length ? `; not started: ${result.notStarted.length}` : ''}`,
    {
      context: { reason: 'disk-full', added: result.added.length, failed: failed.length, notStarted: result.notStarted.length, total },
      hint:
        `The ${result.added.length} kernel(s) added are kept and \`kfarm build\` uses them with those held before; nothing half-built was tagged. ` +
        "See what takes the space with `docker system df` (the engine's data root: `docker info -f '{{.DockerRootDir}}'`), free some (`docker builder prune`, remove images you no longer need, or grow the disk), then rerun `kfarm images sync`: it adds only the kernels still missing.",
    },
  );
}
const asTarget = (k: DiscoveredKernel): KernelTarget => ({
  kernel: k.kernel,
  arch: unameArch(k.arch as DebianArch),
  image: k.release,
  imageRef: '',
  imageId: '',
  release: k.release,
});
