import type { BuildRow, KernelSeenRow, ModuleRow, ResultRow } from '../farm-db.js';

export interface WatchPlanInput {
  /** every kernel the service has seen offered (after this look's observe) */
  seen: readonly KernelSeenRow[];
  /** the flavours the watch follows (empty: all) */
  flavours: readonly string[];
  /** kernels the farm holds an image for */
  held: ReadonlySet<string>;
  modules: readonly ModuleRow[];
  /** each module's results (any build) */
  results: ReadonlyMap<string, readonly ResultRow[]>;
  /** builds queued or running */
  unfinished: readonly BuildRow[];
}

export interface WatchPlan {
  /** new kernels without an image yet: sync them */
  sync: string[];
  /** per module, the new kernels held now that it has no result for */
  builds: Array<{ module: ModuleRow; kernels: string[] }>;
}

/**
 * Pure: what one run of the watch does. A kernel is new when the archive first offered it after
 * the service's first look (that look is the baseline: a farm that starts watching does not
 * rebuild the whole archive; `kfarm images sync` and a build do that). The plan is made again
 * from the database each run, so whatever did not finish (a sync that failed, a service killed
 * mid-sync or mid-build) is planned again by the next run, and nothing finished is: a module
 * with a result for a kernel, or with a build still queued or running, is left alone.
 */
export function planWatch(input: WatchPlanInput): WatchPlan {
  if (input.seen.length === 0) return { sync: [], builds: [] };
  const baselineAt = input.seen.reduce((min, k) => (k.firstSeen < min ? k.firstSeen : min), input.seen[0]?.firstSeen ?? '');
  // a pruned kernel (gone from the archive, its image removed) is not synced again
  const wanted = (k: KernelSeenRow) => k.firstSeen > baselineAt && k.prunedAt === undefined && (input.flavours.length === 0 || input.flavours.includes(k.flavour));
  const fresh = input.seen.filter(wanted).map((k) => k.kernel);
  const busy = new Set(input.unfinished.map((b) => b.module).filter((m): m is string => m !== undefined));
  const builds = input.modules
    .filter((m) => !busy.has(m.name))
    .map((module) => {
      const have = new Set((input.results.get(module.name) ?? []).filter((r) => r.version === module.version).map((r) => r.kernel));
      return { module, kernels: fresh.filter((k) => input.held.has(k) && !have.has(k)) };
    })
    .filter((b) => b.kernels.length > 0);
  return { sync: fresh.filter((k) => !input.held.has(k)), builds };
}
