import type { Logger } from 'pino';
import { describeError } from '../../errors/kfarm-error.js';
import type { ContainerRuntime } from '../../executor/runtime.js';
import { listKfarmImages } from '../../images/catalog.js';
import { removeKernelImage } from '../../images/remove-kernel-image.js';
import type { FarmDb } from '../farm-db.js';
import { planPrune } from './prune-plan.js';

/**
 * The watch's prune step (serve --prune-gone-after): the kernels gone from the archive that
 * long have their build image removed and are marked pruned in the database. A kernel whose
 * image could not be removed stays unmarked, so the next run tries again. Results, reports and
 * published packages are not touched. Returns the kernels pruned.
 */
export async function pruneGone(deps: { db: FarmDb; runtime: ContainerRuntime; logger: Logger; afterMs: number | undefined; now: string }): Promise<string[]> {
  const { db, logger } = deps;
  if (deps.afterMs === undefined) return [];
  const plan = planPrune({ seen: db.kernels.list(), held: await listKfarmImages(deps.runtime), now: deps.now, afterMs: deps.afterMs, busy: db.builds.unfinished().length > 0 });
  if (plan.waiting.length > 0) logger.info({ waiting: plan.waiting }, 'kernels gone from the archive are due for pruning: left for a run with no build in flight');
  for (const s of plan.shared)
    logger.warn(
      { kernel: s.kernel, others: s.others },
      'a kernel due for pruning shares its image with kernels that are not: the image is kept (rebuild the images one per kernel: kfarm images sync)',
    );
  const pruned: Array<{ release: string; arch: string; kernel: string }> = [];
  const removed = new Set<string>();
  for (const step of plan.prune) {
    let ok = true;
    const tags: string[] = [];
    for (const image of step.images.filter((i) => !removed.has(i.id))) {
      try {
        const r = await removeKernelImage(deps.runtime, image);
        tags.push(...r.tags);
        if (r.ok) removed.add(image.id);
        else {
          ok = false;
          logger.warn({ kernel: step.kernel.kernel, image: image.ref, output: r.output.slice(0, 2000) }, 'could not remove the image of a gone kernel; the next run tries again');
        }
      } catch (err) {
        ok = false;
        logger.warn({ kernel: step.kernel.kernel, image: image.ref, err: describeError(err) }, 'could not remove the image of a gone kernel; the next run tries again');
      }
    }
    if (!ok) continue;
    pruned.push({ release: step.kernel.release, arch: step.kernel.arch, kernel: step.kernel.kernel });
    logger.info(
      { kernel: step.kernel.kernel, release: step.kernel.release, goneSince: step.kernel.goneSince, removed: tags },
      'pruned a kernel gone from the archive: its image removed, its results kept',
    );
  }
  if (pruned.length > 0) db.kernels.markPruned(pruned, deps.now);
  return pruned.map((k) => k.kernel);
}
