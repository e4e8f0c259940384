import { debianArch } from '../../archive/releases.js';
import type { KfarmImage } from '../../images/catalog.js';
import { compareKernels } from '../../matrix/kernel-target.js';
import type { KernelSeenRow } from '../farm-db.js';

/**
 * Pure: which kernels the watch prunes after a run. A kernel that leaves the archive is kept
 * (fleets still run it and may need a module rebuilt for it) until it has been gone for
 * serve's --prune-gone-after; then its build image goes (the engine's disk is what a farm runs
 * out of) and the database marks it pruned, so the watch does not sync it again. Its results,
 * reports and published packages stay: they are the farm's history. Nothing is pruned while a
 * build is queued or running (it may need the image); the next run prunes what is still due.
 */
export interface PrunePlanInput {
  /** every kernel the service has seen offered (after this run's look) */
  seen: readonly KernelSeenRow[];
  /** the build images this engine holds, one entry per kernel (catalogFromImages) */
  held: readonly KfarmImage[];
  /** ISO time of the run */
  now: string;
  /** --prune-gone-after in milliseconds; undefined: never prune */
  afterMs: number | undefined;
  /** a build is queued or running */
  busy: boolean;
}

export interface PruneStep {
  kernel: KernelSeenRow;
  /** its images to remove (one per image id); none: the farm never held it (the baseline, a failed sync) */
  images: KfarmImage[];
}

export interface PrunePlan {
  prune: PruneStep[];
  /** due, but left for a later run: a build is in flight */
  waiting: string[];
  /** due, but their image also holds kernels that are not (the one-image-many-kernels layout): image and kernel kept */
  shared: Array<{ kernel: string; others: string[] }>;
}

const key = (release: string, arch: string, kernel: string) => `${release}\u0000${arch}\u0000${kernel}`;

export function planPrune(input: PrunePlanInput): PrunePlan {
  const plan: PrunePlan = { prune: [], waiting: [], shared: [] };
  if (input.afterMs === undefined || !Number.isFinite(input.afterMs) || input.afterMs < 0) return plan;
  const now = Date.parse(input.now);
  const due = input.seen
    .filter((k) => k.goneSince !== undefined && k.prunedAt === undefined)
    .filter((k) => {
      const gone = Date.parse(k.goneSince ?? '');
      return Number.isFinite(gone) && now - gone >= (input.afterMs ?? Infinity);
    })
    .sort((a, b) => (a.goneSince ?? '').localeCompare(b.goneSince ?? '') || compareKernels(a.kernel, b.kernel));
  if (due.length === 0) return plan;
  if (input.busy) return { ...plan, waiting: due.map((k) => k.kernel) };
  const dueKeys = new Set(due.map((k) => key(k.release, k.arch, k.kernel)));
  // an image's entries (one per kernel it holds): only an image all of whose kernels are due goes
  const byId = new Map<string, KfarmImage[]>();
  for (const image of input.held) byId.set(image.id, [...(byId.get(image.id) ?? []), image]);
  const keyOf = (image: KfarmImage, kernel: string) => key(image.name, debianArch(image.arch) ?? image.arch, kernel);
  for (const k of due) {
    const mine = input.held.filter((i) => i.kernels.some((kernel) => keyOf(i, kernel) === key(k.release, k.arch, k.kernel)));
    const others = [...new Set(mine.flatMap((i) => (byId.get(i.id) ?? []).flatMap((entry) => entry.kernels.filter((kernel) => !dueKeys.has(keyOf(entry, kernel))))))].sort(
      compareKernels,
    );
    if (others.length > 0) {
      plan.shared.push({ kernel: k.kernel, others });
      continue;
    }
    const images = [...new Map(mine.map((i) => [i.id, i])).values()];
    plan.prune.push({ kernel: k, images });
  }
  return plan;
}
