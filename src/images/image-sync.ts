import type { Logger } from 'pino';
import { discoverKernels, type DiscoveredKernel, type Discovery } from '../archive/discover.js';
import { selectKernels } from '../matrix/kernel-selector.js';
import type { KernelTarget } from '../matrix/kernel-target.js';
import { unameArch, type DebianArch, type ReleaseSpec } from '../archive/releases.js';
import type { ContainerRuntime } from '../executor/runtime.js';
import { KfarmError, describeError } from '../errors/kfarm-error.js';
import { mapLimit } from '../archive/map-limit.js';
import { ensureBaseImage } from './base-image.js';
import { listKfarmImages } from './catalog.js';
import { KERNEL_BUILD_CONCURRENCY, RECIPE_ARCHES, RECIPES, ensureKernelImage, ensureToolchain, loadRecipe } from './image-builder.js';
import { describePlan, planSync, type SyncPlan } from './sync-plan.js';

export interface SyncRequest {
  releases: readonly ReleaseSpec[];
  arches: readonly DebianArch[];
  flavours?: readonly string[];
  /** a kernel selector (`--kernels`) limiting what is added */
  kernels?: string;
  prune: boolean;
  baseImage?: string;
  archiveCacheDir: string;
  /** what the archive offers, when the caller has already asked it (tests stand in an archive that dropped a kernel) */
  discovery?: Discovery;
}

export interface SyncResult {
  plan: SyncPlan;
  added: string[];
  failed: Array<{ kernel: string; error: string }>;
  pruned: string[];
}

/**
 * `kfarm images sync`: plan (held against what the archive offers), then add each missing
 * kernel's image, a few at once, and with --prune drop the kernels the archive no longer
 * offers. One kernel failing leaves no image for it and does not stop the others.
 */
export async function syncImages(runtime: ContainerRuntime, request: SyncRequest, logger: Logger, say: (line: string) => void): Promise<SyncResult> {
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
  const discovery = request.discovery ?? (await discoverKernels(request.releases, request.arches, { cacheDir: request.archiveCacheDir, logger }));
  for (const w of discovery.warnings) say(`warning: ${w}`);
  const selected = request.kernels === undefined ? undefined : selectKernels(request.kernels, discovery.kernels.map(asTarget)).map((t) => t.kernel);
  const plan = planSync(await listKfarmImages(runtime), discovery.kernels, {
    releases: request.releases.map((r) => r.name),
    arches: request.arches,
    ...(request.flavours ? { flavours: request.flavours } : {}),
    ...(selected ? { kernels: selected } : {}),
    prune: request.prune,
  });
  say(describePlan(plan));
  for (const k of plan.unfetchable) say(`skipped ${k.kernel} (${k.release}): not fetchable: ${k.fetch.fetchable ? 'unknown' : k.fetch.reason}`);
  for (const image of plan.gone) say(`${image.kernels[0] ?? '?'} (${image.name}) is no longer offered by the archive; \`kfarm images sync --prune\` removes it`);
  const result: SyncResult = { plan, added: [], failed: [], pruned: [] };

  if (plan.add.length > 0) {
    const toolchains = new Map<string, Awaited<ReturnType<typeof ensureToolchain>>>();
    const recipes = new Map<string, Awaited<ReturnType<typeof loadRecipe>>>();
    for (const release of new Set(plan.add.map((k) => k.release))) {
      const recipe = await loadRecipe(release);
      recipes.set(release, recipe);
      const base = request.baseImage ?? (await ensureBaseImage(runtime, logger, say, recipe.release.codename));
      toolchains.set(release, await ensureToolchain(runtime, recipe, base, logger, say));
    }
    let done = 0;
    await mapLimit(plan.add, KERNEL_BUILD_CONCURRENCY, async (k) => {
      const recipe = recipes.get(k.release);
      const toolchain = toolchains.get(k.release);
      if (!recipe || !toolchain) return;
      try {
        const image = await ensureKernelImage(runtime, recipe, toolchain, k, logger);
        done++;
        result.added.push(k.kernel);
        say(`[${done}/${plan.add.length}] ${k.kernel} (${k.release}, headers ${k.version}): ${image.built ? `added in ${Math.round(image.ms / 1000)}s` : 'already current'}`);
      } catch (err) {
        done++;
        result.failed.push({ kernel: k.kernel, error: describeError(err) });
        say(`[${done}/${plan.add.length}] ${k.kernel} (${k.release}): FAILED: ${describeError(err)}`);
      }
    });
  }

  for (const image of plan.prune) {
    const info = await runtime.inspectImage(image.ref);
    const tags = (info?.tags ?? [image.ref]).filter((t) => t.startsWith(`kfarm/${image.name}:`));
    const removed = await runtime.removeImages(tags);
    if (removed.ok) {
      result.pruned.push(image.kernels[0] ?? image.ref);
      say(`pruned ${image.kernels[0] ?? '?'} (${tags.join(', ')})`);
    } else {
      say(`could not prune ${image.kernels[0] ?? '?'}: ${removed.output}`);
    }
  }
  return result;
}

const asTarget = (k: DiscoveredKernel): KernelTarget => ({ kernel: k.kernel, arch: unameArch(k.arch as DebianArch), image: k.release, imageRef: '', imageId: '', release: k.release });
