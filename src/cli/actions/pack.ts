import path from 'node:path';
import { DockerRuntime } from '../../executor/docker-runtime.js';
import { loadKmmImage } from '../../packaging/kmm/load.js';
import { rootLogger } from '../../logging/logger.js';
import { packOutDir, parseFormats } from '../../packaging/pack-out-dir.js';
import { EXIT } from '../exit-codes.js';
import type { CliContext } from '../context.js';

/** `kfarm pack <out-dir>` (options: commands/pack.ts) */
export async function packAction(ctx: CliContext, outDir: string, opts: { format: string; load?: boolean }): Promise<void> {
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
}
