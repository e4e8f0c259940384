import { Command } from 'commander';
import type { CliContext } from '../context.js';
import { PACKABLE_FORMAT_NAMES } from '../help-values.js';

/** `kfarm pack <out-dir> --format ...`: an earlier build's results in more formats, without rebuilding. */
export function packCommand(ctx: CliContext): Command {
  return new Command('pack')
    .description("package an earlier build's results (its --out dir) in more formats, without rebuilding")
    .argument('<out-dir>', 'the --out directory of a `kfarm build` (report.json and its DKMS tarballs)')
    .requiredOption('-f, --format <list>', `formats, comma-separated (${PACKABLE_FORMAT_NAMES.join(', ') || 'none yet'})`)
    .option('--load', 'with kmm: load the images into the local Docker engine (docker load)')
    .action(async (outDir: string, opts: { format: string; load?: boolean }) => (await import('../actions/pack.js')).packAction(ctx, outDir, opts));
}
