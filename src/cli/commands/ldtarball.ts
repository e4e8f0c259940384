import { Command } from 'commander';
import type { CliContext } from '../context.js';
import { LDTARBALL_DEFAULT_LIMITS } from '../help-values.js';
import type { LdtarballCliOptions } from '../option-types.js';

/** `kfarm ldtarball <tarball>...`: DKMS tarballs into a DKMS tree, every kernel `built`, all or nothing. */
export function ldtarballCommand(ctx: CliContext): Command {
  return new Command('ldtarball')
    .description("load DKMS tarballs (kfarm's, `dkms mktarball`'s) into a DKMS tree: every kernel `built`, ready for `dkms install`; all or nothing")
    .argument('<tarball...>', 'DKMS tarballs (.dkms.tar.gz; xz, bzip2, zstd or plain tar also read)')
    .option('--dkms-tree <dir>', 'the DKMS tree', '/var/lib/dkms')
    .option('--source-tree <dir>', 'where module sources live (dkms --sourcetree)', '/usr/src')
    .option('--force', 'replace kernels (and a source with another dkms.conf) already there, as dkms ldtarball --force', false)
    .option('--max-bytes <n>', 'refuse a tarball larger than this unpacked', String(LDTARBALL_DEFAULT_LIMITS.maxBytes))
    .option('--max-entries <n>', 'refuse a tarball with more entries', String(LDTARBALL_DEFAULT_LIMITS.maxEntries))
    .action(async (tarballs: string[], opts: LdtarballCliOptions) => (await import('../actions/ldtarball.js')).ldtarballAction(ctx, tarballs, opts));
}
