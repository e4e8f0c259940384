/**
 * Picks the line a person would call the cause of a failed build, from its log (tested on
 * captured logs of real builds: test/fixtures/make-logs). In this order:
 *   1. the compiler's, linker's or modpost's first error;
 *   2. make's own first error: a Makefile's `$(error ...)` (`Makefile:3: *** ...  Stop.`), a
 *      missing rule or directory (`make: *** No rule to make target ...`);
 *   3. the first line where a tool reports an operating-system error (a full disk, a denied
 *      write, a command not found) or was killed by a signal;
 *   4. make's first summary line (`make[1]: *** [...] Error 2`, `Waiting for unfinished jobs`),
 *      which only says that something below failed;
 *   5. the last line that says anything other than make entering or leaving a directory.
 * kfarm's own lines ([kfarm], the make.log header, the supervisor's `environment: line N:`) are
 * never the cause. A line bash prints about a command the driver ran (`/kfarm/driver.sh: line
 * 599:   193 Killed   tail /dev/zero`) is said as the command's (`tail /dev/zero: Killed`): the
 * driver's path and line are kfarm's. The log is the build's to write: every pattern here is
 * anchored or linear, so a hostile line costs its length.
 */
const COMPILER_ERROR = /(?:^|\s)(?:fatal )?error:|: undefined reference to |: multiple definition of /i;
const MAKE_LINE = /^(?:\S*\/)?g?make(?:\[\d+\])?: /;
/** make's line that only reports a failure below it */
const MAKE_SUMMARY = /^(?:\S*\/)?g?make(?:\[\d+\])?: \*\*\* (?:\[.*\] (?:Error \d+|Killed|Interrupt|Segmentation fault|Terminated)|Waiting for unfinished jobs)/;
/** make's own error: `make: *** No rule ...`, or a makefile's `FILE:LINE: *** message.  Stop.` */
const MAKE_ERROR = /^(?:(?:\S*\/)?g?make(?:\[\d+\])?|\S+:\d+): \*\*\* /;
const SYSTEM_ERROR =
  /: (?:No space left on device|Permission denied|Read-only file system|Cannot allocate memory|Disk quota exceeded|No such file or directory|command not found|not found)$/;
/** bash's report of a job the driver ran that ended on a signal */
const SIGNALLED = /: (?:Killed|Terminated|Segmentation fault|Aborted|Bus error|Illegal instruction|Floating point exception)(?: \(core dumped\))?$/;
const MAKE_CHATTER = /^(?:\S*\/)?g?make(?:\[\d+\])?: (?:Entering|Leaving) directory |^(?:\S*\/)?g?make(?:\[\d+\])?: Nothing to be done for /;
/** kfarm's own: the driver's notes, the make.log header, its supervisor's bash (run as `bash -c`) */
const IGNORED = /^\[kfarm\]|^DKMS (?:\(dkms-[^)]*\) )?make\.log|^environment: line \d+: /;
const DRIVER_LINE = /^\/kfarm\/driver\.sh: line \d+: /;

export function firstErrorLine(log: string): string | undefined {
  const lines = log
    .split('\n')
    .map((l) => ownLine(l.trim()))
    .filter((l) => l !== '' && !IGNORED.test(l));
  const isCompilerError = (l: string) => COMPILER_ERROR.test(l) && !MAKE_LINE.test(l);
  return (
    lines.find(isCompilerError) ??
    lines.find((l) => MAKE_ERROR.test(l) && !MAKE_SUMMARY.test(l)) ??
    lines.find((l) => SYSTEM_ERROR.test(l) || SIGNALLED.test(l)) ??
    lines.find((l) => MAKE_SUMMARY.test(l)) ??
    lines.findLast((l) => !MAKE_CHATTER.test(l))
  );
}

/**
 * A line bash printed about a command the driver evaluated, as that command's: the prefix
 * names kfarm's script, and a job's status line (`  193 Killed      tail /dev/zero`) becomes
 * `tail /dev/zero: Killed`.
 */
function ownLine(line: string): string {
  if (!DRIVER_LINE.test(line)) return line;
  const rest = line.replace(DRIVER_LINE, '');
  const job = /^\d+ (\S.*?)(?: {2,}|\t)(\S.*)$/.exec(rest.trim());
  return job ? `${job[2]}: ${job[1]}` : rest;
}

/**
 * Failures kfarm or its driver found without any tool saying so: their message is the cause,
 * and a line of the log (make leaving a directory, a killed command) would hide it.
 */
const SAID_BY_KFARM: ReadonlySet<string> = new Set([
  'unsafe-output',
  'output-too-large',
  'bad-conf',
  'driver-error',
  'missing-module',
  'missing-headers',
  'patch-missing',
  'killed',
  'timeout',
  'missing-dependency',
]);

/** The cause to show for a failure: the message where kfarm found it, else the log's first error, else the message. */
export function failureCause(reason: string | undefined, log: string, message: string | undefined): string | undefined {
  if (reason !== undefined && SAID_BY_KFARM.has(reason)) return message ?? firstErrorLine(log);
  return firstErrorLine(log) ?? message;
}
