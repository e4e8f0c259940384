/**
 * The one list of a build's verdicts and reasons: every other place (the driver's result
 * parser, the worker, the coordinator, the record and report schemas, the JUnit mapping,
 * docs/formats.md) takes its words from here, and test/unit/verdicts.test.ts fails when one of
 * them produces or lists a word this file lacks. Imports nothing, so any folder may use it.
 *
 * The words are stable: they are stored in sealed records (the result store, the queue) and
 * in report.json, so a word is never renamed or dropped, only added.
 */

/** Whose fault a reason is: the module (its source, dkms.conf, its build), the input it was given (limits, kernel, image), or the farm (kfarm, its workers). */
export type Fault = 'module' | 'input' | 'farm';

export const VERDICTS = {
  built: 'every module of dkms.conf was built for the kernel',
  excluded: 'dkms.conf excludes the kernel (BUILD_EXCLUSIVE_*): nothing to build',
  failed: 'the build did not give the modules; the reason says why',
} as const;
export type Verdict = keyof typeof VERDICTS;
export const VERDICT_NAMES = Object.keys(VERDICTS) as [Verdict, ...Verdict[]];

/** Who decides a reason: driver.sh in the container, the worker around it, or the coordinator. */
export type Decider = 'driver' | 'worker' | 'coordinator';

interface ReasonInfo {
  by: readonly Decider[];
  fault: Fault;
  /** the verdict the reason goes with */
  verdict: Exclude<Verdict, 'built'>;
  /** one line: the kernel's row is this because ... */
  description: string;
}

export const REASONS = {
  'build-exclusive': { by: ['driver'], fault: 'module', verdict: 'excluded', description: 'a BUILD_EXCLUSIVE_* directive of dkms.conf excludes the kernel' },
  'bad-conf': { by: ['driver', 'coordinator'], fault: 'module', verdict: 'failed', description: 'dkms.conf is refused on that kernel (or by the module as a whole)' },
  'bad-source': { by: ['coordinator'], fault: 'module', verdict: 'failed', description: 'the source tree is refused (a link leading out, a device, too large)' },
  'make-failed': { by: ['driver'], fault: 'module', verdict: 'failed', description: 'make failed (the first error says why)' },
  'missing-module': { by: ['driver'], fault: 'module', verdict: 'failed', description: 'make succeeded, the .ko named by BUILT_MODULE_NAME/_LOCATION is not there' },
  'script-failed': { by: ['driver'], fault: 'module', verdict: 'failed', description: 'a PRE_BUILD or POST_BUILD script failed (dkms 3.2)' },
  'missing-dependency': { by: ['driver'], fault: 'module', verdict: 'failed', description: 'dkms 3.2: a BUILD_DEPENDS module was not built for the kernel' },
  'patch-missing': { by: ['driver'], fault: 'module', verdict: 'failed', description: 'a PATCH[] of dkms.conf is not in patches/' },
  'patch-failed': { by: ['driver'], fault: 'module', verdict: 'failed', description: 'a PATCH[] of dkms.conf does not apply' },
  'unsafe-output': { by: ['driver', 'worker'], fault: 'module', verdict: 'failed', description: 'what the build handed back held links or paths leading out: refused' },
  'output-too-large': { by: ['driver', 'worker'], fault: 'module', verdict: 'failed', description: 'what the build handed back is larger than the output cap: refused' },
  timeout: { by: ['worker'], fault: 'input', verdict: 'failed', description: 'the build ran longer than --timeout' },
  killed: { by: ['worker'], fault: 'input', verdict: 'failed', description: 'the build was killed, out of its --memory' },
  'disk-full': { by: ['driver'], fault: 'input', verdict: 'failed', description: 'the build filled one of its mounts (--disk)' },
  'missing-headers': { by: ['driver'], fault: 'input', verdict: 'failed', description: "the image given for the kernel lacks the kernel's headers" },
  'driver-error': { by: ['driver', 'worker'], fault: 'farm', verdict: 'failed', description: "the build broke kfarm's own steps in the container" },
  'worker-error': { by: ['coordinator'], fault: 'farm', verdict: 'failed', description: 'the farm could not run the job in its attempts' },
} as const satisfies Record<string, ReasonInfo>;

/** Why a kernel failed or was excluded; stable strings, used in records and report.json. */
export type Reason = keyof typeof REASONS;
/** The reasons as a tuple, for z.enum. */
export const REASON_NAMES = Object.keys(REASONS) as [Reason, ...Reason[]];

export function isReason(value: string): value is Reason {
  return Object.hasOwn(REASONS, value);
}

/**
 * A reason the container's result file may name: the driver's own and the worker's (which the
 * old result parser let through). Never the coordinator's: a build that forges `worker-error`
 * is a broken driver (`driver-error`), not the farm's fault.
 */
export function isContainerReason(value: string): value is Reason {
  return isReason(value) && decidersOf(value).some((d) => d !== 'coordinator');
}

export function decidersOf(reason: Reason): readonly Decider[] {
  return REASONS[reason].by;
}
