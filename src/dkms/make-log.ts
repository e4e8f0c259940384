/**
 * Picks the line a person wants to see first in a failed build's log: the compiler's first
 * error, else make's first "*** ... Error" line, else the last line that says anything.
 */
const COMPILER_ERROR = /(?:^|\s)(?:fatal )?error:/i;
const MAKE_ERROR = /^make(?:\[\d+\])?: \*\*\*/;
const IGNORED = /^\[kfarm\]|^DKMS make\.log/;

export function firstErrorLine(log: string): string | undefined {
  const lines = log.split('\n').map((l) => l.trimEnd()).filter((l) => l.trim() !== '' && !IGNORED.test(l));
  return (
    lines.find((l) => COMPILER_ERROR.test(l) && !MAKE_ERROR.test(l)) ??
    lines.find((l) => MAKE_ERROR.test(l)) ??
    lines[lines.length - 1]
  )?.trim();
}
