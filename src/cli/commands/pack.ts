import path from 'node:path';
import { Command } from 'commander';
import { DockerRuntime } from '../../executor/docker-runtime.js';
import { loadKmmImage } from '../../packaging/kmm/load.js';
import { rootLogger } from '../../logging/logger.js';
import { packOutDir, parseFormats } from '../../packaging/pack-out-dir.js';
import { PACKABLE_FORMATS } from '../../packaging/packers.js';
import { EXIT } from '../exit-codes.js';
import type { CliContext } from '../context.js';

/** `kfarm pack <out-dir> --format ...`: an earlier build's results in more formats, without rebuilding. */
export function packCommand(ctx: CliContext): Command {
  return new Command('pack')
    .description('package an earlier build\'s results (its --out dir) in more formats, without rebuilding')
    .argument('<out-dir>', 'the --out directory of a `kfarm build` (report.json and its DKMS tarballs)')
    .requiredOption('-f, --format <list>', `formats, comma-separated (${PACKABLE_FORMATS().join(', ') || 'none yet'})`)
    .option('--load', 'with kmm: load the images into the local Docker engine (docker load)')
    .action(async (outDir: string, opts: { format: string; load?: boolean }) => {
      const formats = parseFormats(opts.format);
      const packed = await packOutDir(outDir, formats, rootLogger);
      for (const p of packed) ctx.out(`${p.format.padEnd(12)} ${p.path}`);
      if (opts.load) {
        const runtime = new DockerRuntime();
        for (const p of packed.filter((x) => x.format === 'kmm' && x.path.endsWith('.oci.tar'))) {
          ctx.out(`loaded       ${await loadKmmImage(path.join(outDir, p.path), runtime)}`);
        }
      }
      ctx.out(`${packed.length} package(s) in ${outDir}; checksums in ${outDir}/SHA256SUMS`);
      ctx.setExitCode(EXIT.ok);
    });
}
