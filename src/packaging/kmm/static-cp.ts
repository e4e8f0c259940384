import { readFile } from 'node:fs/promises';
import { KfarmError } from '../../errors/kfarm-error.js';

/**
 * The image's `cp`: Debian's busybox-static (/bin/busybox, 1.9 MB, no libraries), the smallest
 * cp there is offline. kfarm/base:bookworm would bring a whole Debian (199 MB) for one command,
 * and coreutils' cp needs libc, libacl, libattr, libselinux beside it. The file is checked
 * here: an ELF of the image's machine with no interpreter (a dynamic one would not run alone).
 */
const EM: Record<string, number> = { amd64: 0x3e, arm64: 0xb7 };
const PT_INTERP = 3;

export function hostDebianArch(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch;
}

export function checkStaticElf(data: Buffer, debianArch: string): string | undefined {
  if (data.length < 64 || data.readUInt32BE(0) !== 0x7f454c46) return 'is not an ELF file';
  if (data[4] !== 2 || data[5] !== 1) return 'is not a 64-bit little-endian ELF';
  const machine = data.readUInt16LE(18);
  if (EM[debianArch] === undefined || machine !== EM[debianArch]) return `is for ELF machine ${machine}, not ${debianArch}`;
  const phoff = Number(data.readBigUInt64LE(32));
  const phentsize = data.readUInt16LE(54);
  const phnum = data.readUInt16LE(56);
  if (phentsize < 4 || phoff + phentsize * phnum > data.length) return 'has a broken program header table';
  for (let i = 0; i < phnum; i++) {
    if (data.readUInt32LE(phoff + i * phentsize) === PT_INTERP) return 'is dynamically linked (it needs an interpreter and libraries)';
  }
  return undefined;
}

export async function readStaticCp(paths: Readonly<Record<string, string>>, debianArch: string): Promise<Buffer> {
  const file = paths[debianArch];
  if (!file) {
    throw new KfarmError('BAD_OPTION', `no static cp for ${debianArch}: a KMM image needs one of its own arch`, {
      context: { arch: debianArch },
      hint: `Give the kmm packer's staticCp a ${debianArch} busybox-static (\`apt-get download busybox-static:${debianArch}\`, then dpkg-deb -x; its bin/busybox).`,
    });
  }
  const data = await readFile(file).catch((err: NodeJS.ErrnoException) => {
    throw new KfarmError('BAD_OPTION', `${file} cannot be read (${err.code ?? err.message}): a KMM image needs a static cp`, {
      context: { file },
      hint: "Install busybox-static (`apt-get install busybox-static`, which scripts/setup.sh does) or point the kmm packer's staticCp at one.",
    });
  });
  const problem = checkStaticElf(data, debianArch);
  if (problem) {
    throw new KfarmError('BAD_OPTION', `${file} ${problem}: a KMM image for ${debianArch} needs a static ${debianArch} cp`, {
      context: { file, arch: debianArch },
      hint: "Use Debian's busybox-static of that arch (its /bin/busybox).",
    });
  }
  return data;
}
