import path from 'node:path';
import { buildDeb } from '../deb/build-deb.js';
import type { PackContext, PackInput, Packer } from '../packer.js';
import { writeAtomic, type WrittenFile } from '../../util/write-atomic.js';
import { bmdebLayout } from './layout.js';

/** `--format bmdeb`: one `<pkg>-modules-<kver>_<version>_<arch>.deb` per built kernel. */
export const bmdebPacker: Packer = {
  format: 'bmdeb',
  async pack(input: PackInput, ctx: PackContext): Promise<WrittenFile[]> {
    // every layout first: a name Debian refuses fails the pack before any file is written
    const layouts = [...input.kernels].sort((a, b) => (a.kernel < b.kernel ? -1 : a.kernel > b.kernel ? 1 : 0)).map((k) => bmdebLayout(input, k));
    const written: WrittenFile[] = [];
    for (const layout of layouts) {
      const data = await buildDeb(layout, input.sourceDateEpoch);
      written.push({ ...(await writeAtomic(path.join(ctx.outDir, layout.fileName), data)), path: layout.fileName });
      ctx.logger.info({ file: layout.fileName }, 'binary-module deb written');
    }
    return written;
  },
};
