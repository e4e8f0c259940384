/**
 * Pure: the packages apt said it could not find while installing a kernel's dependencies, from
 * the build's output lines (apt 2.x on bullseye to trixie, apt 3.x on forky and sid). In a
 * pre-release suite a kernel's headers are often uploaded before the packages they depend on
 * have reached that suite (a new gcc-N-for-host, linux-kbuild of the same upload still in
 * unstable): that kernel is not broken, it is early. Sync names it as waiting and the next sync
 * tries it again (nothing was tagged for it).
 */
const PATTERNS: readonly RegExp[] = [
  // E: Unable to locate package gcc-16-for-host   (apt 3: Error: ...). The builder's output may
  // split apt's "E: " from its message, so no pattern needs that prefix.
  /(?:^|: )Unable to locate package (\S+)/,
  // E: Package 'linux-kbuild-7.3' has no installation candidate
  /(?:^|: )Package '([^']+)' has no installation candidate/,
  // Package linux-kbuild-7.2.13+deb14 is not available, but is referred to by another package.
  /^Package (\S+) is not available, but is referred to by another package/,
  // E: Version '7.3~rc7-1~exp1' for 'linux-headers-7.3-common' was not found
  /(?:^|: )Version '[^']+' for '([^']+)' was not found/,
  //  linux-headers-7.2.13+deb14-amd64 : Depends: gcc-16-for-host but it is not installable
  //  ... : Depends: linux-kbuild-7.2 (= 7.2.13-1) but 7.2.12-1 is to be installed
  /^\s*\S+ : (?:Pre-)?Depends: (\S+)(?: \([^)]*\))? but (?:it is not installable|[^ ]+ is to be installed)/,
  // a continuation line of the same list: "                  Depends: x but it is not installable"
  /^\s+(?:Pre-)?Depends: (\S+)(?: \([^)]*\))? but (?:it is not installable|[^ ]+ is to be installed)/,
];

/** Pure: the package names apt reported missing in these lines, each once, in order; [] when none. */
export function missingPackages(lines: readonly string[]): string[] {
  const found: string[] = [];
  for (const raw of lines) {
    // BuildKit prefixes each output line with its step ("#7 12.34 "): cut it
    const line = raw.replace(/^#\d+ \d+(?:\.\d+)? /, '').trimEnd();
    for (const pattern of PATTERNS) {
      const name = pattern.exec(line)?.[1]?.replace(/:[a-z0-9]+$/, '');
      if (name && /^[a-z0-9][a-z0-9+.-]*$/.test(name) && !found.includes(name)) found.push(name);
    }
  }
  return found;
}
