/**
 * What a name that comes back from a build may look like. Module names, versions, kernel
 * releases and arches end up in host file names (tarballs, logs, package names), so each is
 * checked against a strict character set at the border where it enters: the driver's result,
 * the worker's record, the job payload. DKMS itself only forbids what breaks its own paths
 * (`/` splits <module>/<version>); kfarm's sets are the characters real packages use.
 * driver.sh checks the same sets inside the container (keep them in step: NAME_CHARS there).
 */

/** PACKAGE_NAME, BUILT_MODULE_NAME, DEST_MODULE_NAME: letters, digits, `_ - . +`, 1-64 chars, not starting with `.` or `-`. */
export const MODULE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}$/;
/**
 * PACKAGE_VERSION: as a name, plus `~`, 1-64 chars. Not `:` (an epoch): kbuild cannot build in
 * an M= path that holds one, so DKMS cannot either.
 */
export const MODULE_VERSION = /^[A-Za-z0-9_][A-Za-z0-9_.+~-]{0,63}$/;
/** A kernel release (`uname -r`): 6.1.0-56-amd64, 6.12.117+deb12-amd64, 5.10.0-30-rt-amd64. */
export const KERNEL_RELEASE = /^[A-Za-z0-9][A-Za-z0-9_.+~-]{0,127}$/;
/** An arch as `uname -m` and dkms say it: x86_64, aarch64. */
export const ARCH = /^[a-z0-9_]{1,32}$/;
/**
 * One segment of BUILT_MODULE_LOCATION / DEST_MODULE_LOCATION: name characters, not starting
 * with `.` (so never `.` or `..`). A location is checked segment by segment, never with one
 * regex over the whole path: `^(?:seg\/?)*$` backtracks exponentially on a value that does not
 * match (29 characters took 26 s), and locations come from builds, report.json and job payloads.
 */
export const LOCATION_SEGMENT = /^[A-Za-z0-9_+-][A-Za-z0-9_.+-]*$/;
/** PATH_MAX: no real location comes near it (driver.sh refuses longer ones too) */
export const LOCATION_MAX = 4096;

export type NameKind = 'module name' | 'module version' | 'kernel release' | 'arch';

const RULES: Record<NameKind, RegExp> = {
  'module name': MODULE_NAME,
  'module version': MODULE_VERSION,
  'kernel release': KERNEL_RELEASE,
  arch: ARCH,
};

/** true when `value` is a safe name of that kind */
export function isValidName(kind: NameKind, value: string): boolean {
  return RULES[kind].test(value);
}

/**
 * A location is safe when it is empty or relative segments of name characters joined by single
 * `/`, with at most one trailing `/`: no absolute start, no empty, `.` or `..` segment. Linear
 * in the length of the value (one split, one anchored class regex per segment).
 */
export function isValidLocation(value: string): boolean {
  if (value === '') return true;
  if (value.length > LOCATION_MAX) return false;
  const body = value.endsWith('/') ? value.slice(0, -1) : value;
  return body.split('/').every((segment) => LOCATION_SEGMENT.test(segment));
}

/** A quoted, printable rendering of an untrusted name for error messages. */
export function quoteName(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value);
}
