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
/** BUILT_MODULE_LOCATION / DEST_MODULE_LOCATION: relative path segments of name characters, no `..`. */
export const MODULE_LOCATION = /^(?:[A-Za-z0-9_+-][A-Za-z0-9_.+-]*\/?)*$/;

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

/** A location is safe when it has no `..` segment and no absolute start. */
export function isValidLocation(value: string): boolean {
  return MODULE_LOCATION.test(value) && !value.split('/').includes('..') && !value.split('/').includes('.');
}

/** A quoted, printable rendering of an untrusted name for error messages. */
export function quoteName(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value);
}
