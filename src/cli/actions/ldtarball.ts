import { KfarmError } from '../../errors/kfarm-error.js';
import { ldtarball } from '../../ldtarball/ldtarball.js';
import { rootLogger } from '../../logging/logger.js';
import type { LdtarballCliOptions } from '../option-types.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../exit-codes.js';

/** `kfarm ldtarball <tarball>...` (options: commands/ldtarball.ts) */
export async function ldtarballAction(ctx: CliContext, tarballs: string[], opts: LdtarballCliOptions): Promise<void> {
  const limits = { maxBytes: positive('--max-bytes', opts.maxBytes), maxEntries: positive('--max-entries', opts.maxEntries) };
  const loaded = await ldtarball(tarballs, { dkmsTree: opts.dkmsTree, sourceTree: opts.sourceTree, force: opts.force, limits }, rootLogger);
  for (const m of loaded) {
    for (const k of m.kernels) ctx.out(`${m.module}/${m.version}, ${k.kernel}, ${k.arch}: built${k.replaced ? ' (replaced)' : ''}   from ${k.tarball}`);
    ctx.out(`${m.module}/${m.version}: source ${m.source} in ${opts.sourceTree}/${m.module}-${m.version}`);
  }
  ctx.out(`next: dkms install -m <module> -v <version> -k <kernel> for each kernel`);
  ctx.setExitCode(EXIT.ok);
}

function positive(option: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new KfarmError('BAD_OPTION', `${option} ${JSON.stringify(value)} is not a positive whole number`, { hint: `Give ${option} a number, e.g. ${option} 1000.` });
  return n;
}
