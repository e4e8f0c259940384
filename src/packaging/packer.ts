import type { Logger } from 'pino';
import type { TarEntry } from '../executor/archive.js';
import type { WrittenFile } from '../util/write-atomic.js';

/**
 * The packers' one interface: every output format is a `Packer`, called with the same
 * `PackInput` by `kfarm build --format` (from the build's results) and by `kfarm pack` (from an
 * earlier build's out dir, src/packaging/pack-input.ts). A packer never builds, signs or
 * compresses: the modules arrive as they will be installed (compressed as the target kernel's
 * own, signed when asked), and it only lays them out in its format and writes the files.
 * Layouts are pure (entries in, entries out) and tested without I/O; the writer is the only I/O.
 * Output is reproducible: the same input gives the same bytes (every timestamp is
 * `sourceDateEpoch`, entries sorted, owners root:root, fixed modes).
 */
export const PACK_FORMATS = ['dkms-tarball', 'dkms-rpm', 'dkms-deb', 'kmod-rpm', 'bmdeb', 'kmm'] as const;
export type PackFormat = (typeof PACK_FORMATS)[number];

export interface PackModule {
  /** BUILT_MODULE_NAME, without suffix */
  builtName: string;
  /** DEST_MODULE_NAME, without suffix: the installed module's name */
  destName: string;
  /** the file as dkms stores and installs it: `<destName>.ko`, or `.ko.xz` where the kernel compresses its own */
  fileName: string;
  /** where Debian's dkms installs it below /lib/modules/<kernel>: `/updates/dkms` */
  installLocation: string;
  /** DEST_MODULE_LOCATION as dkms.conf wrote it: `/extra`, `/kernel/drivers/net`... */
  destLocation: string;
  data: Buffer;
}

export interface PackKernel {
  /** uname -r of the target: 6.1.0-57-amd64 */
  kernel: string;
  /** dkms's arch (uname -m): x86_64, aarch64 */
  arch: string;
  /** Debian's arch: amd64, arm64 */
  debianArch: string;
  /** the release whose image built it: debian-12 */
  release: string;
  modules: PackModule[];
  makeLog: Buffer | undefined;
  /** the kernel's .config as dkms 2.8/3.0 keep it in log/ */
  kernelConfig: Buffer | undefined;
}

export interface PackInput {
  /** PACKAGE_NAME, PACKAGE_VERSION */
  name: string;
  version: string;
  dkmsConf: Buffer;
  /** the module source as packed for the build (dkms_source_tree of a full tarball) */
  source: TarEntry[];
  /** the built kernels only (failed and excluded ones have nothing to pack) */
  kernels: PackKernel[];
  /** seconds since the epoch for every timestamp in the output (SOURCE_DATE_EPOCH) */
  sourceDateEpoch: number;
}

export interface PackContext {
  /** the out dir; a packer writes below it only (its own subdir or file names) and never outside */
  outDir: string;
  logger: Logger;
  /** kfarm's state dir, for what a packer caches (the KMM images' busybox-static); default $KFARM_STATE_DIR */
  stateDir?: string;
}

export interface Packer {
  format: PackFormat;
  /** the files written, paths relative to outDir */
  pack(input: PackInput, ctx: PackContext): Promise<WrittenFile[]>;
}
