import { constants } from 'node:fs';
import { chmod, mkdir, open, symlink } from 'node:fs/promises';
import path from 'node:path';
import type { TarEntry } from '../executor/archive.js';
import { findLayoutProblem } from '../util/link-tree.js';

/**
 * Writes a module source read by readSourceTar (names already plain and relative) into an
 * empty directory, as `kfarm build` would find it on disk. Links are recreated as links, their
 * text as sent, and never followed: findLayoutProblem refuses a name below a link, files are
 * created with O_EXCL|O_NOFOLLOW, so nothing can be written outside `dir` whatever the links say.
 * Modes are the entries' own (a directory's once everything below it is written), so packSource
 * of the tree gives the bytes, and the sha256, the sender's packSource gave.
 */
export async function writeSourceTree(entries: readonly TarEntry[], dir: string): Promise<void> {
  const layout = findLayoutProblem(entries);
  if (layout) throw new Error(layout);
  await mkdir(dir, { recursive: false });
  const dirs: Array<{ target: string; mode: number }> = [];
  for (const e of entries) {
    const target = path.join(dir, e.path);
    if (e.type === 'directory') {
      await mkdir(target, { recursive: true, mode: 0o700 });
      dirs.push({ target, mode: e.mode & 0o777 });
    } else {
      await mkdir(path.dirname(target), { recursive: true });
      if (e.type === 'symlink') await symlink(e.linkname ?? '', target);
      else {
        const handle = await open(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        try {
          await handle.writeFile(e.data ?? Buffer.alloc(0));
          await handle.chmod(e.mode & 0o777); // not the umask's
        } finally {
          await handle.close();
        }
      }
    }
  }
  for (const d of dirs.reverse()) await chmod(d.target, d.mode);
}
