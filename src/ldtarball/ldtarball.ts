import type { Logger } from 'pino';
import { loadPlans, type LoadedModule, type Trees } from './commit.js';
import { DEFAULT_LIMITS, mergePlans, planTarball, type LdLimits } from './plan.js';
import { readTarball } from './read-tarball.js';

export interface LdtarballOptions extends Trees {
  force: boolean;
  limits?: LdLimits;
}

/**
 * `kfarm ldtarball`: every tarball read and checked first, then all of them loaded at once (one
 * refused tarball loads none). Every kernel of a multi-kernel tarball is loaded, unlike
 * `dkms ldtarball` 3.x, which loads the first only (shared/design.md).
 */
export async function ldtarball(tarballs: readonly string[], opts: LdtarballOptions, log: Logger): Promise<LoadedModule[]> {
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const plans = [];
  for (const file of tarballs) plans.push(planTarball(file, await readTarball(file, limits), limits));
  const loaded = await loadPlans(mergePlans(plans), opts, opts.force, log);
  log.info({ loaded: loaded.map((m) => ({ module: m.module, version: m.version, kernels: m.kernels.length })) }, 'ldtarball: loaded');
  return loaded;
}
