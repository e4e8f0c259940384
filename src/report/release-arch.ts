import { debianArch } from '../archive/releases.js';

/**
 * Pure: the release and Debian arch a report row is filed under, from its image name and its
 * uname arch. report.ts names each row with them and groups.ts groups the rows by them; they
 * live apart from both so that neither imports the other.
 */

/** An image name says its release: `debian-12`, or a `debian-12…` prefix (debian-12-custom); else the name itself. */
export function releaseOfImage(image: string): string {
  return /^([a-z]+-\d+)(?:[-_./:]|$)/.exec(image)?.[1] ?? image;
}

/** x86_64 → amd64, aarch64 → arm64; an arch Debian has no recipe for keeps its name. */
export function debianArchOf(arch: string): string {
  return debianArch(arch) ?? arch;
}
