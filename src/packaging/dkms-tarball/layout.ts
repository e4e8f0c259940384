import type { TarEntry } from '../../executor/archive.js';

/**
 * The DKMS tarball format, as `dkms mktarball` writes it and `dkms ldtarball` reads it
 * (reference: shared/reference/dkms.md §2). Pure: entries in, entries out.
 */
export interface DkmsPackage {
  name: string;
  version: string;
  dkmsConf: Buffer;
}

export interface KernelBinaries {
  kernel: string;
  arch: string;
  /** file names as dkms stores them: <DEST_MODULE_NAME>.ko, or .ko.xz where the kernel compresses its modules */
  modules: Array<{ fileName: string; data: Buffer }>;
  makeLog: Buffer | undefined;
  /** the kernel's .config, kept next to make.log by dkms 2.8 and 3.0 */
  kernelConfig?: Buffer | undefined;
}

const DIR = 0o755;
const FILE = 0o644;

export function perKernelTarballName(pkg: Pick<DkmsPackage, 'name' | 'version'>, kernel: string, arch: string): string {
  return `${pkg.name}-${pkg.version}-kernel${kernel}-${arch}.dkms.tar.gz`;
}

/** The name `common.postinst <name> <version> <dir>` looks for. */
export function fullTarballName(pkg: Pick<DkmsPackage, 'name' | 'version'>): string {
  return `${pkg.name}-${pkg.version}.dkms.tar.gz`;
}

/**
 * dkms_main_tree/ is always present (dkms <= 3.0.10 rejects a tarball without it), and
 * dkms_dbversion lets dkms 2.x hosts load it too; 3.x ignores it.
 */
function mainTree(kernels: readonly KernelBinaries[]): TarEntry[] {
  const entries: TarEntry[] = [dir('dkms_main_tree'), file('dkms_main_tree/dkms_dbversion', Buffer.from('2.0.0\n'))];
  for (const k of kernels) {
    const base = `dkms_main_tree/${k.kernel}/${k.arch}`;
    entries.push(dir(`dkms_main_tree/${k.kernel}`), dir(base), dir(`${base}/module`));
    for (const m of k.modules) entries.push(file(`${base}/module/${m.fileName}`, m.data));
    if (k.makeLog || k.kernelConfig) entries.push(dir(`${base}/log`));
    if (k.kernelConfig) entries.push(file(`${base}/log/.config`, k.kernelConfig));
    if (k.makeLog) entries.push(file(`${base}/log/make.log`, k.makeLog));
  }
  return entries;
}

/** One kernel, no source: what `dkms mktarball --binaries-only -k <kernel>` writes. */
export function binariesOnlyLayout(pkg: DkmsPackage, kernel: KernelBinaries): TarEntry[] {
  return [
    ...mainTree([kernel]),
    dir('dkms_binaries_only'),
    file('dkms_binaries_only/dkms.conf', pkg.dkmsConf),
    file('dkms_binaries_only/PACKAGE_NAME', Buffer.from(`${pkg.name}\n`)),
    file('dkms_binaries_only/PACKAGE_VERSION', Buffer.from(`${pkg.version}\n`)),
  ];
}

/**
 * Source plus every kernel's binaries. Debian's dkms 3.0.10 `mktarball` names such a file
 * for all kernels but packs only the first; kfarm packs them all.
 */
export function fullLayout(kernels: readonly KernelBinaries[], source: readonly TarEntry[]): TarEntry[] {
  return [...mainTree(kernels), dir('dkms_source_tree'), ...source.map((e) => ({ ...e, path: `dkms_source_tree/${e.path}`, uid: 0, gid: 0 }))];
}

function dir(path: string): TarEntry {
  return { path, type: 'directory', mode: DIR };
}

function file(path: string, data: Buffer): TarEntry {
  return { path, type: 'file', mode: FILE, data };
}
