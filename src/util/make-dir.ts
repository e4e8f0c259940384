import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * `mkdir -p` that always ends. Node's own (`mkdir(dir, { recursive: true })`) reads ENOENT as
 * "the parent is missing", makes the parent, gets EEXIST and tries the child again, forever,
 * where the parent exists but the child can never be made: below /proc (procfs answers
 * ENOENT) or below a dangling symlink. `kfarm build --out /proc/x` spun a core there and never
 * answered a Ctrl-C (the promise never settles, so nothing sees the abort). Here a parent is
 * made at most once: an ENOENT after it exists is the answer.
 */
export async function makeDirs(dir: string, options: { mode?: number } = {}): Promise<void> {
  const abs = path.resolve(dir);
  const made = await tryMkdir(abs, options.mode);
  if (made !== 'ENOENT') return;
  const parent = path.dirname(abs);
  if (parent === abs) throw enoent(abs);
  await makeDirs(parent);
  if ((await tryMkdir(abs, options.mode)) === 'ENOENT') throw enoent(abs);
}

/** Made, or already a directory (a link to one counts, as for mkdir -p); ENOENT is handed back, anything else thrown. */
async function tryMkdir(abs: string, mode: number | undefined): Promise<'ok' | 'ENOENT'> {
  try {
    await mkdir(abs, mode === undefined ? undefined : { mode });
    return 'ok';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'ENOENT';
    if (code !== 'EEXIST') throw err;
    // something is there: fine if it is (or leads to) a directory; a dangling link throws ENOENT here
    if (!(await stat(abs)).isDirectory()) throw err;
    return 'ok';
  }
}

function enoent(abs: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOENT: no such file or directory, mkdir '${abs}'`), { code: 'ENOENT', errno: -2, syscall: 'mkdir', path: abs });
}
