/**
 * Debian names made into RPM fields. rpmbuild 4.18 accepts `+` in Name (kmodtool puts
 * `uname -r` there verbatim, and 6.12.117+deb12-amd64 passes), but refuses `~` in Name
 * ("Illegal char '~'"), `-` in Version, and an EVR with more than one `-` ("Invalid version
 * (double separator '-')"), which every Debian kernel release has (6.1.0-57-amd64).
 * Pure; the mappings are documented in README "Formats".
 */

/** `~` → `_` (the only character of a kernel release or module name rpm refuses in Name). */
export function rpmNamePart(value: string): string {
  return value.replace(/~/g, '_');
}

/** A dkms PACKAGE_VERSION as RPM Version: `-` → `_` (`~` and `+` keep their meaning in rpm). */
export function rpmVersion(version: string): string {
  return version.replace(/-/g, '_');
}

/**
 * A kernel release as the EVR of `kernel-uname-r = …`: kept verbatim when it has at most one
 * `-` (Fedora's 6.17.7-300.fc43.x86_64), else every `-` but the last becomes `_`
 * (6.1.0-57-amd64 → 6.1.0_57-amd64), the only form rpm parses.
 */
export function rpmKernelEvr(kernel: string): string {
  const last = kernel.lastIndexOf('-');
  if (last < 0) return kernel;
  return `${kernel.slice(0, last).replace(/-/g, '_')}${kernel.slice(last)}`;
}
