import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { packTar } from '../../executor/archive.js';
import { KfarmError } from '../../errors/kfarm-error.js';
import type { PackContext, PackInput, Packer } from '../packer.js';
import { gzipTar } from '../write-file.js';
import { writeAtomic, type WrittenFile } from '../../util/write-atomic.js';
import { runDepmod } from './depmod.js';
import { imageLabels, kmmArchiveName, kmmModuleYaml, kmmModuleYamlName, kmmRepository, kmmTag, cpLayerEntries, moduleLayerEntries, ociArchiveEntries } from './layout.js';
import { env } from '../../config/env.js';
import type { Mirror } from '../../archive/releases.js';
import { busyboxStatic } from './busybox-static.js';
import { checkStaticElf, hostDebianArch, readStaticCp } from './static-cp.js';

export interface KmmPackerOptions {
  /** the images' repository, `{name}` the module's name; the Module YAML refers to it */
  imageRepository?: string;
  /** a static cp (busybox-static's /bin/busybox) per Debian arch; an arch not listed gets Debian's (busybox-static.ts) */
  staticCp?: Readonly<Record<string, string>>;
  /** the host's busybox, used for the host's arch when it is static (no network); tests turn it off with null */
  hostBusybox?: string | null;
  /** tests: the archive busybox-static is read from */
  mirrors?: Readonly<Record<Mirror, string>>;
  /** the depmod to run (Debian's kmod, with xz) */
  depmod?: string;
}

export const DEFAULT_KMM_REPOSITORY = 'kfarm.local/{name}-kmm';

/**
 * `--format kmm`: per built kernel an OCI image archive `<name>-<version>-kmm-<kver>.oci.tar`
 * (loadable by `docker load` too, see layout.ts), and `<name>-kmm-module.yaml`, the KMM Module
 * that maps each kernel to its image.
 */
export function createKmmPacker(options: KmmPackerOptions = {}): Packer {
  return {
    format: 'kmm',
    async pack(input: PackInput, ctx: PackContext): Promise<WrittenFile[]> {
      let repository: string;
      try {
        repository = kmmRepository(options.imageRepository ?? DEFAULT_KMM_REPOSITORY, input.name);
      } catch (err) {
        throw new KfarmError('BAD_OPTION', `the KMM image repository ${(err as Error).message}`, {
          hint: 'Use a registry path like registry.example.com/team/{name}-kmm (lower case).',
        });
      }
      const firstModule = input.kernels[0]?.modules[0]?.destName;
      if (!firstModule)
        throw new KfarmError('BAD_OPTION', `${input.name} ${input.version} has no built module to put in a KMM image`, { hint: 'Build at least one kernel first.' });
      const cps = new Map<string, Promise<Buffer>>();
      const cpFor = (release: string, arch: string): Promise<Buffer> => {
        const key = `${release}\0${arch}`;
        let cp = cps.get(key);
        if (!cp) cps.set(key, (cp = staticCpFor(release, arch, options, ctx)));
        return cp;
      };
      const written: WrittenFile[] = [];
      const mappings: Array<{ kernel: string; image: string }> = [];
      for (const kernel of [...input.kernels].sort((a, b) => (a.kernel < b.kernel ? -1 : a.kernel > b.kernel ? 1 : 0))) {
        const tag = kmmTag(input.version, kernel.kernel);
        const reference = `${repository}:${tag}`;
        const depmodFiles = await runDepmod(kernel, options.depmod);
        const tars = [cpLayerEntries(await cpFor(kernel.release, kernel.debianArch), input.sourceDateEpoch), moduleLayerEntries(kernel, depmodFiles, input.sourceDateEpoch)];
        const layers = await Promise.all(tars.map(async (entries) => packTar(entries).then(async (tar) => ({ tar, gz: await gzipTar(tar) }))));
        const archive = await packTar(
          ociArchiveEntries({ layers, labels: imageLabels(input, kernel), debianArch: kernel.debianArch, epoch: input.sourceDateEpoch, reference, tag }),
        );
        const name = kmmArchiveName(input, kernel.kernel);
        written.push({ ...(await writeAtomic(path.join(ctx.outDir, name), archive)), path: name });
        mappings.push({ kernel: kernel.kernel, image: reference });
        ctx.logger.info({ kernel: kernel.kernel, image: reference, file: name }, 'KMM image written');
      }
      const yamlName = kmmModuleYamlName(input.name);
      written.push({ ...(await writeAtomic(path.join(ctx.outDir, yamlName), Buffer.from(kmmModuleYaml(input, mappings, firstModule)))), path: yamlName });
      return written;
    },
  };
}

export const kmmPacker: Packer = createKmmPacker();

/**
 * The cp of an image for `arch`: the one the options name; else the host's /bin/busybox for the
 * host's arch when it is a static ELF (fast, offline); else Debian's busybox-static of the
 * kernel's release and arch, fetched through the signed archive and cached in the state dir.
 */
async function staticCpFor(release: string, arch: string, options: KmmPackerOptions, ctx: PackContext): Promise<Buffer> {
  if (options.staticCp?.[arch]) return readStaticCp(options.staticCp, arch);
  const host = options.hostBusybox === undefined ? '/bin/busybox' : options.hostBusybox;
  if (host && arch === hostDebianArch()) {
    const data = await readFile(host).catch(() => undefined);
    if (data && checkStaticElf(data, arch) === undefined) return data;
  }
  return busyboxStatic(release, arch, { stateDir: ctx.stateDir ?? env.stateDir, logger: ctx.logger, ...(options.mirrors ? { mirrors: options.mirrors } : {}) });
}
