import { Command } from 'commander';
import { env } from '../../config/env.js';
import type { CliContext } from '../context.js';

/** `kfarm cache ls|prune|verify`: the result store on disk (src/store/). */
export function cacheCommand(ctx: CliContext): Command {
  const actions = () => import('../actions/cache.js');
  const cache = new Command('cache').description(`the results kept on disk (${env.stateDir}/results; bound: KFARM_CACHE_SIZE, default 4G)`);
  cache
    .command('ls')
    .description('list the kept results: module, kernel, size, last used; and the totals')
    .action(async () => (await actions()).cacheLsAction(ctx));
  cache
    .command('prune')
    .description('drop the least recently used results until the store fits --max-size (default: its bound)')
    .option('--max-size <size>', 'e.g. 500M, 2G; 0 empties the store')
    .action(async (opts: { maxSize?: string }) => (await actions()).cachePruneAction(ctx, opts));
  cache
    .command('verify')
    .description('re-hash every kept result; remove and report the corrupt ones (exit 1 if any)')
    .action(async () => (await actions()).cacheVerifyAction(ctx));
  return cache;
}
