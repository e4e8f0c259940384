import { KfarmError } from '../errors/kfarm-error.js';
import { fromSystemError } from '../errors/system-error.js';

/**
 * A publish that runs out of room: the repository stays as it was (the publishers swap their
 * indexes in last), and the user must hear that the disk is full, not that a tool failed. The
 * tools kfarm runs (reprepro, createrepo_c, gpg, rpmsign) say so only in their output, which
 * `run` puts in its COMMAND_FAILED message; Node's own writes fail with ENOSPC.
 */
const NO_SPACE = /No space left on device|Disk quota exceeded|ENOSPC|EDQUOT/;

/** Pure: does a tool's output say the disk (or quota) is full. */
export function saysNoSpace(text: string): boolean {
  return NO_SPACE.test(text);
}

/** `err` as the FILE_SYSTEM error of a full disk under `repoDir`, or `err` itself when it is something else. */
export function asFullDisk(err: unknown, repoDir: string): unknown {
  const hint = `Free space on that file system (\`df -h ${repoDir}\`) and publish again: the repository is as it was before this publish, complete and signed.`;
  if (err instanceof KfarmError && err.code === 'FILE_SYSTEM') {
    const errno = err.context.errno;
    return errno === 'ENOSPC' || errno === 'EDQUOT' ? new KfarmError('FILE_SYSTEM', err.message, { context: err.context, cause: err, hint }) : err;
  }
  // Node's error names the file it failed on: for a copy, the source (path) and the one it was writing (dest)
  const failed = err as (NodeJS.ErrnoException & { dest?: string }) | undefined;
  const system = fromSystemError(err, failed?.code ? (failed.dest ?? failed.path ?? repoDir) : undefined);
  if (system) {
    const errno = system.context.errno;
    return errno === 'ENOSPC' || errno === 'EDQUOT' ? new KfarmError('FILE_SYSTEM', system.message, { context: system.context, cause: err, hint }) : system;
  }
  if (err instanceof KfarmError && err.code === 'COMMAND_FAILED' && saysNoSpace(err.message)) {
    return new KfarmError('FILE_SYSTEM', `no space left on the device writing ${repoDir} (ENOSPC): ${err.message}`, {
      context: { ...err.context, errno: 'ENOSPC', path: repoDir },
      cause: err,
      hint,
    });
  }
  return err;
}
