import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';

/**
 * Built modules are named as dkms names them on a machine running their kernel: `<name>.ko`,
 * or `<name>.ko.xz` where the kernel's own modules are compressed (Debian's 6.12 and later).
 * Tests find them by either name and read them uncompressed.
 */
export const MODULE_FILE = /\.ko(?:\.xz|\.zst|\.gz)?$/;

/** The tarball entry of one module of one kernel, whatever its suffix. */
export function moduleEntry<T extends { path: string }>(entries: T[], kernel: string, arch: string, name: string): T | undefined {
  const base = `dkms_main_tree/${kernel}/${arch}/module/${name}`;
  return entries.find((e) => e.path.startsWith(base) && MODULE_FILE.test(e.path) && e.path.slice(base.length).match(/^\.ko(?:\.xz|\.zst|\.gz)?$/));
}

/** The ELF bytes of a module file, decompressed by the real xz / zstd when it is compressed. */
export async function plainModule(data: Buffer, fileName: string): Promise<Buffer> {
  if (fileName.endsWith('.ko')) return data;
  if (fileName.endsWith('.ko.gz')) return gunzipSync(data);
  const tool = fileName.endsWith('.ko.xz') ? 'xz' : 'zstd';
  const { stdout } = await execa(tool, ['-dc'], { input: data, encoding: 'buffer', stripFinalNewline: false });
  return Buffer.from(stdout);
}
