import path from 'node:path';
import { KfarmError } from '../../errors/kfarm-error.js';

/**
 * What SQLite's result codes mean for the farm's state file, as a KfarmError that names it and
 * says what to do. Anything else (a constraint a caller broke: a bug) is returned as it was.
 */
export function sqliteFailure(err: unknown, file: string, doing: string): unknown {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return err;
  const context = { file, sqlite: code };
  const dir = path.dirname(file);
  if (code === 'SQLITE_CORRUPT' || code.startsWith('SQLITE_CORRUPT_') || code === 'SQLITE_NOTADB') return corruptState(file, `${code} while ${doing}`, err);
  // SQLite reports ENOSPC as SQLITE_FULL, and a failed grow of its shared memory (the -shm file) as IOERR_SHMSIZE
  if (code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_SHMSIZE')
    return new KfarmError('FILE_SYSTEM', `no space left on the device for the farm's state ${file} while ${doing} (${code}); nothing of this change was written`, {
      context,
      cause: err,
      hint: `Free space on that file system (\`df -h ${dir}\`) and retry. What was written before is intact.`,
    });
  if (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_IOERR') || code === 'SQLITE_PERM' || code === 'SQLITE_AUTH')
    return new KfarmError('FILE_SYSTEM', `cannot read or write the farm's state ${file} while ${doing} (${code}); nothing of this change was written`, {
      context,
      cause: err,
      hint: `kfarm needs to write ${dir} (the database, its -wal and -shm files): check that the file system is mounted read-write, has room and the files belong to this user.`,
    });
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))
    return new KfarmError('FILE_SYSTEM', `the farm's state ${file} stayed locked by another process while ${doing} (${code})`, {
      context,
      cause: err,
      hint: 'Another kfarm (serve, tokens) holds a long write on it: retry, or stop the other process.',
    });
  return err;
}

/** The state file is damaged or not a database: kfarm never starts over in its place on its own. */
export function corruptState(file: string, what: string, cause?: unknown): KfarmError {
  return new KfarmError('STATE_CORRUPT', `the farm's state ${file} is damaged or not a kfarm database (${what})`, {
    context: { file },
    cause,
    hint: `Restore it from a backup, or move it aside (\`mv ${file} ${file}.broken\`, with any ${path.basename(file)}-wal and -shm beside it): kfarm then starts an empty one, and registered modules, build history and tokens have to be made again.`,
  });
}

/** A system error (errno) on the state file or its directory, as a KfarmError naming the file. */
export function fileFailure(err: unknown, file: string, doing: string): KfarmError {
  const code = (err as NodeJS.ErrnoException).code ?? String(err);
  const dir = path.dirname(file);
  const what =
    code === 'ENOSPC' ? 'no space left on the device' : code === 'EROFS' ? 'read-only file system' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : 'cannot write';
  return new KfarmError('FILE_SYSTEM', `the farm's state ${file}: ${what} while ${doing} (${code})`, {
    context: { file, errno: code },
    cause: err,
    hint:
      code === 'ENOSPC'
        ? `Free space on that file system (\`df -h ${dir}\`) and retry.`
        : `kfarm needs to write ${dir} (the database, its -wal and -shm files): make it writable by this user, or set KFARM_STATE_DIR to a directory that is.`,
  });
}

export type Guard = <T>(doing: string, fn: () => T) => T;

/** Runs fn, turning SQLite's failures into KfarmErrors naming the file. */
export function guardFor(file: string): Guard {
  return (doing, fn) => {
    try {
      return fn();
    } catch (err) {
      throw sqliteFailure(err, file, doing);
    }
  };
}
