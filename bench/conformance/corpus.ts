/**
 * Pure: what the conformance harness measures. The real DKMS packages of the Debian archive
 * (each release's own version) and the releases whose dkms is the oracle.
 */
export const RELEASES = ['debian-11', 'debian-12', 'debian-13'] as const;
export type Release = (typeof RELEASES)[number];

export const ARCHIVE_PACKAGES = [
  'acpi-call-dkms',
  'vpoll-dkms',
  'tp-smapi-dkms',
  'ddcci-dkms',
  'dm-writeboost-dkms',
  'gost-crypto-dkms',
  'rapiddisk-dkms',
  'lime-forensics-dkms',
  'xtables-addons-dkms',
] as const;

export function isRelease(name: string): name is Release {
  return (RELEASES as readonly string[]).includes(name);
}

/** One module source the harness builds both ways. */
export interface CorpusSource {
  /** what the table calls it: the package name, or the corpus dir's subdir name */
  label: string;
  /** where it came from: `acpi-call-dkms 1.2.2-2` or `corpus test/fixtures/x` */
  origin: string;
  /** a directory on this host holding dkms.conf */
  dir: string;
}

/** Pure: the one /usr/src/<m>-<v> directory a DKMS package ships, from its file list. */
export function dkmsSourceDirOf(paths: readonly string[]): string | undefined {
  const dirs = new Set<string>();
  for (const p of paths) {
    const m = /^\.?\/?usr\/src\/([^/]+)\/dkms\.conf$/.exec(p);
    if (m?.[1]) dirs.add(m[1]);
  }
  return dirs.size === 1 ? [...dirs][0] : undefined;
}
