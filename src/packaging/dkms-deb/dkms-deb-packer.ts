import path from 'node:path';
import { packTar } from '../../executor/archive.js';
import { buildDeb } from '../deb/build-deb.js';
import { binariesOnlyLayout, perKernelTarballName } from '../dkms-tarball/layout.js';
import type { PackContext, PackInput, PackKernel, Packer } from '../packer.js';
import { gzipTar } from '../write-file.js';
import { writeAtomic, type WrittenFile } from '../../util/write-atomic.js';
import { dkmsDebLayout, type KernelTarball } from './layout.js';

/** The per-kernel binaries-only tarball, byte for byte what `kfarm build` writes to --out. */
export async function kernelTarball(input: PackInput, kernel: PackKernel): Promise<KernelTarball> {
  const entries = binariesOnlyLayout(input, {
    kernel: kernel.kernel,
    arch: kernel.arch,
    modules: kernel.modules.map((m) => ({ fileName: m.fileName, data: m.data })),
    makeLog: kernel.makeLog,
    kernelConfig: kernel.kernelConfig,
  });
  return {
    kernel: kernel.kernel,
    arch: kernel.arch,
    debianArch: kernel.debianArch,
    fileName: perKernelTarballName(input, kernel.kernel, kernel.arch),
    data: await gzipTar(await packTar(entries, './')),
  };
}

/** `--format dkms-deb`: one `<pkg>-dkms_<version>_<arch>.deb` per module version, every built kernel in it. */
export const dkmsDebPacker: Packer = {
  format: 'dkms-deb',
  async pack(input: PackInput, ctx: PackContext): Promise<WrittenFile[]> {
    const tarballs: KernelTarball[] = [];
    for (const k of input.kernels) tarballs.push(await kernelTarball(input, k));
    const layout = dkmsDebLayout(input, tarballs);
    const data = await buildDeb(layout, input.sourceDateEpoch);
    const written = { ...(await writeAtomic(path.join(ctx.outDir, layout.fileName), data)), path: layout.fileName };
    ctx.logger.info({ file: layout.fileName, kernels: tarballs.length }, 'DKMS deb written');
    return [written];
  },
};
