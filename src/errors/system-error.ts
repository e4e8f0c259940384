import path from 'node:path';
import { KfarmError } from './kfarm-error.js';

/**
 * The file system conditions kfarm cannot cause and the user can fix, found anywhere a write
 * failed (the out dir, the state dir, the result store): they are the environment (exit 3)
 * with what to do, never "a bug" with a stack trace. Looks through `cause` too, since a
 * library may wrap the system error. Anything else stays unexpected (undefined).
 */
export function fromSystemError(err: unknown, writing?: string): KfarmError | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth += 1) {
    const { code } = e as NodeJS.ErrnoException;
    // a failed write() names no file: the writer that knows it says (writing)
    const file = writing ?? (e as NodeJS.ErrnoException).path;
    const where = file ? ` writing ${file}` : ' on a file system kfarm writes to';
    const dir = file ? path.dirname(file) : '<the out dir>';
    const context = { errno: code, ...(file ? { path: file } : {}) };
    switch (code) {
      case 'ENOSPC':
      case 'EDQUOT':
        return new KfarmError('FILE_SYSTEM', `${code === 'EDQUOT' ? 'disk quota exceeded' : 'no space left on the device'}${where} (${code})`, {
          context,
          cause: err,
          hint: `Free space on that file system (\`df -h ${dir}\`), or pass --out (and KFARM_STATE_DIR) on one with room. Kernels that finished are in the result store: a rerun builds only what did not.`,
        });
      case 'EROFS':
        return new KfarmError('FILE_SYSTEM', `read-only file system${where} (EROFS)`, {
          context,
          cause: err,
          hint: 'Pass --out (and KFARM_STATE_DIR) on a file system kfarm can write to.',
        });
    }
  }
  return undefined;
}
