import { env } from '../../config/env.js';
import { rootLogger } from '../../logging/logger.js';
import { ResultStore } from '../../store/result-store.js';
import { cacheBound, formatSize, parseSize } from '../../store/size.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { usableStateDir } from '../../config/state-dir.js';

// `kfarm cache ls|prune|verify` (options: commands/cache.ts)

const store = async () => ResultStore.under(await usableStateDir(env.stateDir), cacheBound(undefined, env.cacheSize), rootLogger);

export async function cacheLsAction(ctx: CliContext): Promise<void> {
  const s = await store();
  const entries = await s.list();
  for (const e of entries) {
    const r = e.record;
    const module = r?.packageName ? `${r.packageName}/${r.packageVersion ?? '?'}` : '?';
    ctx.out(
      `${e.key.slice(0, 12)}  ${module.padEnd(24)} ${(r?.kernel ?? '(unreadable)').padEnd(28)} ${(r?.verdict ?? '-').padEnd(8)} ${formatSize(e.bytes).padStart(6)}  ${e.lastUsed.toISOString()}`,
    );
  }
  ctx.out(`${entries.length} result(s), ${formatSize(await s.size())} on disk of ${formatSize(s.maxBytes)} in ${s.dir}`);
  ctx.setExitCode(EXIT.ok);
}

export async function cachePruneAction(ctx: CliContext, opts: { maxSize?: string }): Promise<void> {
  const s = await store();
  const plan = await s.evict(opts.maxSize === undefined ? s.maxBytes : parseSize(opts.maxSize));
  ctx.out(`removed ${plan.entries.length} result(s) and ${plan.blobs.length} blob(s): ${formatSize(plan.before)} -> ${formatSize(plan.after)}`);
  ctx.setExitCode(EXIT.ok);
}

export async function cacheVerifyAction(ctx: CliContext): Promise<void> {
  const s = await store();
  const checked = await s.verify();
  for (const line of checked.corrupt) ctx.out(`corrupt: ${line} (removed)`);
  ctx.out(
    `${checked.entries} result(s), ${checked.blobs} blob(s) checked: ${checked.corrupt.length === 0 ? 'all intact' : `${checked.corrupt.length} corrupt, removed (rebuilt on the next build)`}`,
  );
  ctx.setExitCode(checked.corrupt.length === 0 ? EXIT.ok : EXIT.kernelsFailed);
}
