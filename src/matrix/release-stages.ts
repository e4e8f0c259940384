/**
 * Which of kfarm's release names are pre-release suites (Debian testing, unstable,
 * experimental): their kernels come and go between syncs and do not ship to a vendor's users
 * yet. Kept here, below the archive layer, so that the kernel selector (`stage:`, `next`) can
 * tell without the release table; src/archive/releases.ts marks the same rows
 * (test/unit/releases.test.ts holds the two equal).
 */
export type ReleaseStage = 'released' | 'pre-release';

export const PRE_RELEASE_NAMES: readonly string[] = ['debian-testing', 'debian-unstable', 'debian-experimental'];

/** Pure: a release name's stage; any other name (debian-12, a custom image) is a released one. */
export function stageOfRelease(name: string | undefined): ReleaseStage {
  return name !== undefined && PRE_RELEASE_NAMES.includes(name) ? 'pre-release' : 'released';
}
