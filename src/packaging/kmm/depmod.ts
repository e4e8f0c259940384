import { lstat, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TarEntry } from '../../executor/archive.js';
import { KfarmError } from '../../errors/kfarm-error.js';
import { run } from '../../process/run.js';
import type { PackKernel } from '../packer.js';
import { moduleTree } from './layout.js';
import { makeDirs } from '../../util/make-dir.js';

/** depmod's outputs: modules.dep, modules.dep.bin, modules.alias… (never the modules themselves). */
const DEPMOD_FILE = /^modules\.[a-z.]+$/;
const MAX_BYTES = 64 * 1024 * 1024;

export function depmodPath(): string {
  for (const p of ['/usr/sbin/depmod', '/sbin/depmod']) if (existsSync(p)) return p;
  return 'depmod';
}

/**
 * The real `depmod -b <root> <kver>` over the kernel's modules laid out as in the image, its
 * files read back (relative to /opt/lib/modules/<kver>/). A .ko.xz needs a depmod built with
 * xz (Debian's kmod is: `depmod -V` says +XZ). What it wrote is checked: plain files with
 * depmod's names only, capped.
 */
export async function runDepmod(kernel: PackKernel, depmod = depmodPath()): Promise<TarEntry[]> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'kfarm-kmm-depmod-'));
  try {
    for (const e of moduleTree(kernel)) {
      const file = path.join(root, e.path);
      await makeDirs(path.dirname(file));
      await writeFile(file, e.data ?? Buffer.alloc(0));
    }
    // kmod 34+ built for merged /usr (trixie) looks in <root>/usr/lib/modules: both lead to the same files
    await makeDirs(path.join(root, 'usr', 'lib'));
    await symlink('../../lib/modules', path.join(root, 'usr', 'lib', 'modules'));
    const result = await run(depmod, ['-b', root, kernel.kernel], { allowFailure: true, timeoutMs: 120_000 });
    if (result.exitCode !== 0) {
      throw new KfarmError(
        'COMMAND_FAILED',
        `depmod -b <dir> ${kernel.kernel} exited with status ${result.exitCode}: ${(result.stderr || result.stdout).trim().split('\n').pop() ?? ''}`,
        {
          context: { kernel: kernel.kernel },
          hint: "Install kmod (Debian's, which reads .ko.xz) on the machine that packs.",
        },
      );
    }
    const dir = path.join(root, 'lib', 'modules', kernel.kernel);
    const names = new Set(kernel.modules.map((m) => m.fileName));
    const out: TarEntry[] = [];
    let total = 0;
    for (const name of (await readdir(dir)).sort()) {
      if (names.has(name)) continue;
      const st = await lstat(path.join(dir, name));
      if (!DEPMOD_FILE.test(name) || !st.isFile())
        throw new KfarmError('COMMAND_FAILED', `depmod wrote an unexpected ${JSON.stringify(name)}`, { context: { kernel: kernel.kernel } });
      total += st.size;
      if (total > MAX_BYTES) throw new KfarmError('OUTPUT_TOO_LARGE', `depmod's files for ${kernel.kernel} pass ${MAX_BYTES} bytes`, { context: { kernel: kernel.kernel } });
      out.push({ path: name, type: 'file', mode: 0o644, data: await readFile(path.join(dir, name)) });
    }
    if (!out.some((e) => e.path === 'modules.dep'))
      throw new KfarmError('COMMAND_FAILED', `depmod wrote no modules.dep for ${kernel.kernel}`, { context: { kernel: kernel.kernel } });
    return out;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
