import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { extractTar } from '../../src/executor/archive.js';
import { run } from '../../src/process/run.js';
import type { KernelReport } from '../../src/report/report.js';

/** One row of `kfarm kernels --available --json`. */
export interface AvailableKernel {
  kernel: string;
  release: string;
  arch: string;
  flavour: string;
  fetchable: boolean;
}

/**
 * What is wrong with the built modules of these report rows (empty: nothing): each per-kernel
 * tarball must hold `dkms_main_tree/<kernel>/<arch>/module/<module>.ko` (`.ko.xz` where the
 * kernel compresses its own, as the report says) whose vermagic names the kernel, with
 * `aarch64` exactly on aarch64 kernels. The module files go to `scratch`.
 */
export async function vermagicProblems(out: string, rows: readonly KernelReport[], scratch: string, module = 'hello'): Promise<string[]> {
  const wrong: string[] = [];
  for (const k of rows) {
    const tarball = await readFile(path.join(out, k.tarball?.path ?? 'missing'));
    const entries = await extractTar(gunzipSync(tarball), { maxBytes: 1 << 26, maxEntries: 100, allowSymlinks: false }, 'tarball');
    const fileName = k.modules.find((m) => m.name === module)?.file ?? `${module}.ko`;
    const want = `dkms_main_tree/${k.kernel}/${k.arch}/module/${fileName}`;
    const ko = entries.find((e) => e.path === want);
    if (!ko?.data) {
      wrong.push(`${k.kernel}: no ${want} in ${k.tarball?.path ?? 'no tarball'}`);
      continue;
    }
    // modinfo reads .ko.xz itself
    const file = path.join(scratch, `${k.kernel}-${k.arch}-${fileName}`);
    await writeFile(file, ko.data);
    const vermagic = (await run('modinfo', ['-F', 'vermagic', file])).stdout.trim();
    const words = vermagic.split(/\s+/);
    if (words[0] !== k.kernel || words.includes('aarch64') !== (k.arch === 'aarch64')) wrong.push(`${k.kernel} (${k.arch}): vermagic "${vermagic}"`);
  }
  return wrong;
}
