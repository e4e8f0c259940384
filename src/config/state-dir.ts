import { access, constants } from 'node:fs/promises';
import { KfarmError } from '../errors/kfarm-error.js';
import { makeDirs } from '../util/make-dir.js';

/**
 * The state dir (KFARM_STATE_DIR), made and checked once before a command uses it, so that a
 * path that cannot be a directory (below /proc, a file, no permission) is one clear error
 * instead of a failure deep inside whatever writes there first.
 */
export async function usableStateDir(dir: string): Promise<string> {
  try {
    await makeDirs(dir, { mode: 0o700 });
    await access(dir, constants.W_OK | constants.X_OK);
    return dir;
  } catch (err) {
    throw new KfarmError('BAD_OPTION', `state dir ${dir}: cannot create or write it (${(err as NodeJS.ErrnoException).code ?? String(err)})`, {
      context: { stateDir: dir },
      hint: 'Set KFARM_STATE_DIR to a directory kfarm can create and write (default: ~/.kfarm).',
      cause: err,
    });
  }
}
