import path from 'node:path';
import type { PackContext, PackInput, Packer } from '../packer.js';
import { writeAtomic, type WrittenFile } from '../../util/write-atomic.js';
import { kmodRpmFileName, kmodRpmPlan } from './kmod-spec.js';
import { rpmbuild } from './rpmbuild.js';

/** `--format kmod-rpm`: one `kmod-<name>-<kver>-<version>-1.<arch>.rpm` per built kernel. */
export const kmodRpmPacker: Packer = {
  format: 'kmod-rpm',
  async pack(input: PackInput, ctx: PackContext): Promise<WrittenFile[]> {
    const written: WrittenFile[] = [];
    for (const kernel of [...input.kernels].sort((a, b) => (a.kernel < b.kernel ? -1 : a.kernel > b.kernel ? 1 : 0))) {
      const plan = kmodRpmPlan(input, kernel);
      const built = await rpmbuild({ ...plan, sourceDateEpoch: input.sourceDateEpoch });
      const name = kmodRpmFileName(input, kernel);
      written.push({ ...(await writeAtomic(path.join(ctx.outDir, name), built.data)), path: name });
      ctx.logger.info({ kernel: kernel.kernel, file: name }, 'kmod RPM written');
    }
    return written;
  },
};
