/**
 * Picks the line a person wants to see first in a failed build's log: the compiler's first
 * error, else make's first "*** ... Error" line, else the first line where a tool reports an
 * operating-system error (a full disk, a denied write), else the last line that says anything.
 */
const COMPILER_ERROR = /(?:^|\s)(?:fatal )?error:/i;
const MAKE_ERROR = /^make(?:\[\d+\])?: \*\*\*/;
const SYSTEM_ERROR = /: (?:No space left on device|Permission denied|Read-only file system|Cannot allocate memory|Disk quota exceeded)$/;
const IGNORED = /^\[kfarm\]|^DKMS make\.log/;

export function firstErrorLine(log: string): string | undefined {
  const lines = log.split('\n').map((l) => l.trimEnd()).filter((l) => l.trim() !== '' && !IGNORED.test(l));
  return (
    lines.find((l) => COMPILER_ERROR.test(l) && !MAKE_ERROR.test(l)) ??
    lines.find((l) => MAKE_ERROR.test(l)) ??
    lines.find((l) => SYSTEM_ERROR.test(l)) ??
    lines[lines.length - 1]
  )?.trim();
}
