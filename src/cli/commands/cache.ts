import { Command } from 'commander';
import { env } from '../../config/env.js';
import { rootLogger } from '../../logging/logger.js';
import { ResultStore } from '../../store/result-store.js';
import { cacheBound, formatSize, parseSize } from '../../store/size.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../exit-codes.js';

/** `kfarm cache ls|prune|verify`: the result store on disk (src/store/). */
export function cacheCommand(ctx: CliContext): Command {
  const store = () => ResultStore.under(env.stateDir, cacheBound(undefined, env.cacheSize), rootLogger);
  const cache = new Command('cache').description(`the results kept on disk (${env.stateDir}/results; bound: KFARM_CACHE_SIZE, default 4G)`);
  cache
    .command('ls')
    .description('list the kept results: module, kernel, size, last used; and the totals')
    .action(async () => {
      const s = store();
      const entries = await s.list();
      for (const e of entries) {
        const r = e.record;
        const module = r?.packageName ? `${r.packageName}/${r.packageVersion ?? '?'}` : '?';
        ctx.out(`${e.key.slice(0, 12)}  ${module.padEnd(24)} ${(r?.kernel ?? '(unreadable)').padEnd(28)} ${(r?.verdict ?? '-').padEnd(8)} ${formatSize(e.bytes).padStart(6)}  ${e.lastUsed.toISOString()}`);
      }
      ctx.out(`${entries.length} result(s), ${formatSize(await s.size())} on disk of ${formatSize(s.maxBytes)} in ${s.dir}`);
      ctx.setExitCode(EXIT.ok);
    });
  cache
    .command('prune')
    .description('drop the least recently used results until the store fits --max-size (default: its bound)')
    .option('--max-size <size>', 'e.g. 500M, 2G; 0 empties the store')
    .action(async (opts: { maxSize?: string }) => {
      const s = store();
      const plan = await s.evict(opts.maxSize === undefined ? s.maxBytes : parseSize(opts.maxSize));
      ctx.out(`removed ${plan.entries.length} result(s) and ${plan.blobs.length} blob(s): ${formatSize(plan.before)} -> ${formatSize(plan.after)}`);
      ctx.setExitCode(EXIT.ok);
    });
  cache
    .command('verify')
    .description('re-hash every kept result; remove and report the corrupt ones (exit 1 if any)')
    .action(async () => {
      const s = store();
      const checked = await s.verify();
      for (const line of checked.corrupt) ctx.out(`corrupt: ${line} (removed)`);
      ctx.out(`${checked.entries} result(s), ${checked.blobs} blob(s) checked: ${checked.corrupt.length === 0 ? 'all intact' : `${checked.corrupt.length} corrupt, removed (rebuilt on the next build)`}`);
      ctx.setExitCode(checked.corrupt.length === 0 ? EXIT.ok : EXIT.kernelsFailed);
    });
  return cache;
}
