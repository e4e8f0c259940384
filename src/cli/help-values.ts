import type { PackFormat } from '../packaging/packer.js';

/**
 * Values the help text quotes whose home module is heavy (it loads the packers, Docker, tar):
 * copied here so that registering a command, and so `kfarm --help`, loads none of them.
 * test/unit/help-values.test.ts holds each copy equal to its source.
 */

/** packaging/packers.ts PACKABLE_FORMATS(), in its order */
export const PACKABLE_FORMAT_NAMES: readonly PackFormat[] = ['kmod-rpm', 'dkms-rpm', 'bmdeb', 'dkms-deb', 'kmm'];
/** images/image-builder.ts RECIPES */
export const RECIPE_NAMES = ['debian-11', 'debian-12', 'debian-13', 'debian-testing', 'debian-unstable', 'debian-experimental'] as const;
/** images/image-builder.ts RECIPE_ARCHES */
export const RECIPE_ARCH_NAMES = ['amd64', 'arm64'] as const;
/** ldtarball/plan.ts DEFAULT_LIMITS */
export const LDTARBALL_DEFAULT_LIMITS = { maxBytes: 512 * 1024 * 1024, maxEntries: 100_000 } as const;
