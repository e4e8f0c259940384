import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { TarEntry } from '../../src/executor/archive.js';

/** A source directory as tar entries below `prefix`: files with their modes, symlinks as links (never followed), as `cp -a` would. */
export async function treeEntries(dir: string, prefix: string): Promise<TarEntry[]> {
  const entries: TarEntry[] = [{ path: prefix, type: 'directory', mode: 0o755 }];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(path.join(dir, rel))).sort()) {
      const relPath = rel ? `${rel}/${name}` : name;
      const full = path.join(dir, relPath);
      const st = await lstat(full);
      const mode = st.mode & 0o7777;
      if (st.isSymbolicLink()) entries.push({ path: `${prefix}/${relPath}`, type: 'symlink', mode: 0o777, linkname: await readlink(full) });
      else if (st.isDirectory()) {
        entries.push({ path: `${prefix}/${relPath}`, type: 'directory', mode });
        await walk(relPath);
      } else if (st.isFile()) entries.push({ path: `${prefix}/${relPath}`, type: 'file', mode, data: await readFile(full) });
    }
  };
  await walk('');
  return entries;
}
