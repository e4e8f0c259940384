import path from 'node:path';
import { KfarmError } from '../../errors/kfarm-error.js';
import { packTar } from '../../executor/archive.js';
import type { PackContext, PackInput, Packer } from '../packer.js';
import { gzipTar } from '../write-file.js';
import { writeAtomic, type WrittenFile } from '../../util/write-atomic.js';
import { rpmbuild } from '../kmod-rpm/rpmbuild.js';
import { dkmsRpmFileName, dkmsRpmPlan, kernelTarballEntries, tarballKey } from './dkms-rpm-spec.js';

/** `--format dkms-rpm`: `<name>-dkms-bin-<version>-1.noarch.rpm`, every built kernel in it. */
export const dkmsRpmPacker: Packer = {
  format: 'dkms-rpm',
  async pack(input: PackInput, ctx: PackContext): Promise<WrittenFile[]> {
    if (input.kernels.length === 0)
      throw new KfarmError('BAD_OPTION', `${input.name} ${input.version} has no built kernel to put in a DKMS RPM`, { hint: 'Build at least one kernel first.' });
    const tarballs = new Map<string, Buffer>();
    for (const kernel of input.kernels) tarballs.set(tarballKey(kernel), await gzipTar(await packTar(kernelTarballEntries(input, kernel), './')));
    const plan = dkmsRpmPlan(input, tarballs);
    const built = await rpmbuild({ ...plan, sourceDateEpoch: input.sourceDateEpoch });
    const name = dkmsRpmFileName(input);
    const written = { ...(await writeAtomic(path.join(ctx.outDir, name), built.data)), path: name };
    ctx.logger.info({ file: name, kernels: input.kernels.length }, 'DKMS RPM written');
    return [written];
  },
};
