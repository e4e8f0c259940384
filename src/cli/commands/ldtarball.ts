import { Command } from 'commander';
import { KfarmError } from '../../errors/kfarm-error.js';
import { ldtarball } from '../../ldtarball/ldtarball.js';
import { DEFAULT_LIMITS } from '../../ldtarball/plan.js';
import { rootLogger } from '../../logging/logger.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../exit-codes.js';

/** `kfarm ldtarball <tarball>...`: DKMS tarballs into a DKMS tree, every kernel `built`, all or nothing. */
export function ldtarballCommand(ctx: CliContext): Command {
  return new Command('ldtarball')
    .description('load DKMS tarballs (kfarm\'s, `dkms mktarball`\'s) into a DKMS tree: every kernel `built`, ready for `dkms install`; all or nothing')
    .argument('<tarball...>', 'DKMS tarballs (.dkms.tar.gz; xz, bzip2, zstd or plain tar also read)')
    .option('--dkms-tree <dir>', 'the DKMS tree', '/var/lib/dkms')
    .option('--source-tree <dir>', 'where module sources live (dkms --sourcetree)', '/usr/src')
    .option('--force', 'replace kernels (and a source with another dkms.conf) already there, as dkms ldtarball --force', false)
    .option('--max-bytes <n>', 'refuse a tarball larger than this unpacked', String(DEFAULT_LIMITS.maxBytes))
    .option('--max-entries <n>', 'refuse a tarball with more entries', String(DEFAULT_LIMITS.maxEntries))
    .action(async (tarballs: string[], opts: { dkmsTree: string; sourceTree: string; force: boolean; maxBytes: string; maxEntries: string }) => {
      const limits = { maxBytes: positive('--max-bytes', opts.maxBytes), maxEntries: positive('--max-entries', opts.maxEntries) };
      const loaded = await ldtarball(tarballs, { dkmsTree: opts.dkmsTree, sourceTree: opts.sourceTree, force: opts.force, limits }, rootLogger);
      for (const m of loaded) {
        for (const k of m.kernels) ctx.out(`${m.module}/${m.version}, ${k.kernel}, ${k.arch}: built${k.replaced ? ' (replaced)' : ''}   from ${k.tarball}`);
        ctx.out(`${m.module}/${m.version}: source ${m.source} in ${opts.sourceTree}/${m.module}-${m.version}`);
      }
      ctx.out(`next: dkms install -m <module> -v <version> -k <kernel> for each kernel`);
      ctx.setExitCode(EXIT.ok);
    });
}

function positive(option: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new KfarmError('BAD_OPTION', `${option} ${JSON.stringify(value)} is not a positive whole number`, { hint: `Give ${option} a number, e.g. ${option} 1000.` });
  return n;
}
