import { mkdir, mkdtemp, readFile, rm, utimes, writeFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KfarmError } from '../../errors/kfarm-error.js';
import { safeRelativePath } from '../../executor/archive.js';
import { run } from '../../process/run.js';
import { md5sums, type DebLayout } from './control.js';
import { makeDirs } from '../../util/make-dir.js';

/**
 * The one writer of .deb files: the layout staged in a temp dir with its modes set explicitly
 * (the umask plays no part), every mtime set to SOURCE_DATE_EPOCH, then
 * `dpkg-deb --root-owner-group --build`, which sorts the members, owns them root:root and
 * clamps mtimes to SOURCE_DATE_EPOCH. xz with one thread: liblzma's multi-threaded encoder
 * writes other bytes than the single-threaded one, and dpkg picks by the number of cores.
 */
export async function buildDeb(layout: DebLayout, sourceDateEpoch: number): Promise<Buffer> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'kfarm-deb-'));
  try {
    const root = path.join(tmp, 'root');
    const staged: string[] = [];
    const put = async (rel: string, type: 'file' | 'directory', mode: number, data?: Buffer) => {
      const target = path.join(root, rel);
      if (type === 'directory') await makeDirs(target);
      else await writeFile(target, data ?? Buffer.alloc(0));
      await chmod(target, mode);
      staged.push(target);
    };
    await mkdir(root);
    await chmod(root, 0o755);
    await put('DEBIAN', 'directory', 0o755);
    await put('DEBIAN/control', 'file', 0o644, Buffer.from(layout.control));
    const sums = md5sums(layout.entries);
    if (sums !== '') await put('DEBIAN/md5sums', 'file', 0o644, Buffer.from(sums));
    for (const [name, text] of Object.entries(layout.scripts)) await put(`DEBIAN/${name}`, 'file', 0o755, Buffer.from(text));
    for (const entry of layout.entries) {
      if (entry.type === 'symlink') throw new KfarmError('UNSAFE_ARCHIVE', `refused to pack ${layout.fileName}: ${entry.path} is a link`, { context: { entry: entry.path } });
      let rel: string;
      try {
        rel = safeRelativePath(entry.path);
      } catch (err) {
        throw new KfarmError('UNSAFE_ARCHIVE', `refused to pack ${layout.fileName}: ${(err as Error).message}`, { context: { entry: entry.path } });
      }
      if (rel === 'DEBIAN' || rel.startsWith('DEBIAN/'))
        throw new KfarmError('UNSAFE_ARCHIVE', `refused to pack ${layout.fileName}: ${entry.path} is dpkg's control area`, { context: { entry: entry.path } });
      await put(rel, entry.type, entry.mode, entry.data);
    }
    staged.push(root);
    const when = new Date(sourceDateEpoch * 1000);
    for (const p of staged) await utimes(p, when, when);
    const out = path.join(tmp, 'out.deb');
    await run('dpkg-deb', ['--root-owner-group', '-Zxz', '--threads-max=1', '--build', root, out], {
      env: { ...process.env, SOURCE_DATE_EPOCH: String(sourceDateEpoch) },
      timeoutMs: 300_000,
    });
    return await readFile(out);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
