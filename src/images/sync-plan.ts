import type { DiscoveredKernel } from '../archive/discover.js';
import { debianArch, type DebianArch } from '../archive/releases.js';
import { compareKernels } from '../matrix/kernel-target.js';
import type { KfarmImage } from './catalog.js';

export interface SyncScope {
  releases: readonly string[];
  arches: readonly DebianArch[];
  /** Debian flavours to add (amd64, cloud-amd64, rt-amd64); none: every flavour */
  flavours?: readonly string[];
  /** kernel releases to add (`--kernels`, resolved against the archive); none: every kernel */
  kernels?: readonly string[];
  prune: boolean;
  /**
   * the recipe-files hash an image gets now, by `<release>/<debian arch>` (recipe-files.ts):
   * a held image with another (or none) was built by an older recipe and is rebuilt
   */
  recipes?: ReadonlyMap<string, string>;
}

export interface SyncPlan {
  /** offered, fetchable and not held (or held with another headers version: rebuilt) */
  add: Array<DiscoveredKernel & { replaces?: KfarmImage; recipeChanged?: true }>;
  /** held, built by an older recipe, and not rebuilt this time (outside the selection, or not fetchable now): kept and said */
  outdated: KfarmImage[];
  /** held kernels the archive no longer offers: removed with --prune, else only named */
  prune: KfarmImage[];
  gone: KfarmImage[];
  unchanged: KfarmImage[];
  /** offered but not fetchable now (the file 404s): skipped and said */
  unfetchable: DiscoveredKernel[];
}

/**
 * Pure: the kernels held against those the archive offers, for the releases and arches in
 * scope. Flavours and the kernel selection limit what is added, never what is pruned or kept; a held kernel whose
 * headers package got a new version is rebuilt (its image id changes, the others' do not).
 */
export function planSync(held: readonly KfarmImage[], offered: readonly DiscoveredKernel[], scope: SyncScope): SyncPlan {
  const inScope = (release: string, arch: string | undefined) => scope.releases.includes(release) && arch !== undefined && (scope.arches as readonly string[]).includes(arch);
  const heldByKey = new Map<string, KfarmImage>();
  for (const image of held) {
    const arch = debianArch(image.arch);
    if (!inScope(image.name, arch)) continue;
    for (const kernel of image.kernels) heldByKey.set(`${image.name}/${arch}/${kernel}`, { ...image, kernels: [kernel] });
  }
  const offeredKeys = new Set<string>();
  const plan: SyncPlan = { add: [], prune: [], gone: [], unchanged: [], unfetchable: [], outdated: [] };
  const selected = (k: DiscoveredKernel) =>
    (!scope.flavours || scope.flavours.length === 0 || scope.flavours.includes(k.flavour)) && (!scope.kernels || scope.kernels.includes(k.kernel));
  for (const k of offered) {
    if (!inScope(k.release, k.arch)) continue;
    const key = `${k.release}/${k.arch}/${k.kernel}`;
    offeredKeys.add(key);
    const have = heldByKey.get(key);
    if (have && (have.headersVersion === undefined || have.headersVersion === k.version)) {
      const recipe = scope.recipes?.get(`${k.release}/${k.arch}`);
      if (recipe === undefined || have.recipeFiles === recipe) plan.unchanged.push(have);
      // an older recipe's image: rebuilt when selected (the old one serves builds until the new one is tagged)
      else if (selected(k) && k.fetch.fetchable) plan.add.push({ ...k, replaces: have, recipeChanged: true });
      else plan.outdated.push(have);
      continue;
    }
    if (!have && !selected(k)) continue;
    if (!k.fetch.fetchable) {
      if (have) plan.unchanged.push(have);
      else plan.unfetchable.push(k);
      continue;
    }
    plan.add.push(have ? { ...k, replaces: have } : k);
  }
  for (const [key, image] of heldByKey) {
    if (offeredKeys.has(key)) continue;
    (scope.prune ? plan.prune : plan.gone).push(image);
  }
  const byKernel = (a: { kernel: string }, b: { kernel: string }) => compareKernels(a.kernel, b.kernel);
  const imageByKernel = (a: KfarmImage, b: KfarmImage) => compareKernels(a.kernels[0] ?? '', b.kernels[0] ?? '');
  plan.add.sort(byKernel);
  plan.unfetchable.sort(byKernel);
  plan.prune.sort(imageByKernel);
  plan.gone.sort(imageByKernel);
  plan.unchanged.sort(imageByKernel);
  plan.outdated.sort(imageByKernel);
  return plan;
}

/** Pure: the one-line summary a sync prints first. */
export function describePlan(plan: SyncPlan): string {
  if (plan.add.length === 0 && plan.prune.length === 0) {
    const outdated = plan.outdated.length ? `, ${plan.outdated.length} from an older recipe (kept)` : '';
    return `nothing to do: ${plan.unchanged.length} kernel(s) held and current${outdated}${plan.unfetchable.length ? `, ${plan.unfetchable.length} offered but not fetchable` : ''}`;
  }
  const rebuilt = plan.add.filter((k) => k.recipeChanged).length;
  const parts = [`${plan.add.length - rebuilt} to add`, ...(rebuilt ? [`${rebuilt} to rebuild (recipe changed)`] : []), `${plan.unchanged.length} unchanged`];
  if (plan.outdated.length) parts.push(`${plan.outdated.length} from an older recipe (kept)`);
  if (plan.prune.length) parts.push(`${plan.prune.length} to prune`);
  if (plan.unfetchable.length) parts.push(`${plan.unfetchable.length} not fetchable (skipped)`);
  return parts.join(', ');
}
