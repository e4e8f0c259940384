import { KfarmError } from '../errors/kfarm-error.js';
import { UNAME_OF_DEBIAN } from '../matrix/arch-names.js';
import type { ReleaseStage } from '../matrix/release-stages.js';

/**
 * The Debian releases kfarm has recipes for, as data: which archive suites hold their kernels,
 * for which architectures. The archive index reads this; image recipes can too.
 */
export type DebianArch = 'amd64' | 'arm64';
export type Mirror = 'debian' | 'debian-security';

export interface ArchiveSuite {
  suite: string;
  mirror: Mirror;
}

export type { ReleaseStage };

export interface ReleaseSpec {
  /** kfarm's name, also the image name prefix: debian-12 */
  name: string;
  codename: string;
  /** the suites kernels are read from (the toolchain's debian.sources may list more: experimental's installs from sid too) */
  suites: readonly ArchiveSuite[];
  arches: readonly DebianArch[];
  /** released: a Debian release (stable, oldstable, ...); pre-release: testing, unstable, experimental, whose kernels come and go */
  stage: ReleaseStage;
  /** the codename of the root its toolchain starts from, when not `codename` (experimental: sid) */
  base?: string;
}

export const DEFAULT_MIRRORS: Readonly<Record<Mirror, string>> = {
  debian: 'http://deb.debian.org/debian',
  'debian-security': 'http://deb.debian.org/debian-security',
};

/**
 * The mirrors to read indexes from: Debian's by default, or others (`--mirror`,
 * `--security-mirror`: a local mirror, a caching proxy). Only http(s) URLs; no trailing slash.
 */
export function resolveMirrors(options: { mirror?: string; securityMirror?: string }): Record<Mirror, string> {
  const check = (option: string, value: string | undefined, fallback: string): string => {
    if (value === undefined) return fallback;
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.search || url.hash) {
      throw new KfarmError('BAD_OPTION', `${option} ${value} is not an http(s) URL`, { context: { [option]: value }, hint: `e.g. ${option} ${fallback}` });
    }
    return url.toString().replace(/\/+$/, '');
  };
  return {
    debian: check('--mirror', options.mirror, DEFAULT_MIRRORS.debian),
    'debian-security': check('--security-mirror', options.securityMirror, DEFAULT_MIRRORS['debian-security']),
  };
}

const suitesOf = (codename: string, backports: boolean): ArchiveSuite[] => [
  { suite: codename, mirror: 'debian' },
  { suite: `${codename}-security`, mirror: 'debian-security' },
  { suite: `${codename}-updates`, mirror: 'debian' },
  // bullseye-backports is gone from deb.debian.org (404), so it is not listed
  ...(backports ? [{ suite: `${codename}-backports`, mirror: 'debian' as const }] : []),
];

/**
 * The pre-release suites are named by their role, not their codename: `debian-testing` is what
 * a CI asks for ("what is coming"), and stays the name when Debian releases forky and testing
 * becomes the next codename. Each row still names the codename it reads (forky), so that day is
 * one edit here and in the recipe (and in src/dkms/driver.sh, which refuses a codename whose
 * dkms it has not been told) rather than a silent switch to another dkms and compiler.
 * Measured 2026-12-08: forky and sid carry dkms 3.2.2-1 (trixie's), kernels 7.2.x+deb14 on
 * gcc-16; experimental 7.3~rc kernels named without an ABI number (7.3-amd64). forky-updates
 * and forky-backports hold no packages (the latter is not served): not read.
 */
export const RELEASES: readonly ReleaseSpec[] = [
  { name: 'debian-11', codename: 'bullseye', suites: suitesOf('bullseye', false), arches: ['amd64', 'arm64'], stage: 'released' },
  { name: 'debian-12', codename: 'bookworm', suites: suitesOf('bookworm', true), arches: ['amd64', 'arm64'], stage: 'released' },
  { name: 'debian-13', codename: 'trixie', suites: suitesOf('trixie', true), arches: ['amd64', 'arm64'], stage: 'released' },
  {
    name: 'debian-testing',
    codename: 'forky',
    suites: [
      { suite: 'forky', mirror: 'debian' },
      { suite: 'forky-security', mirror: 'debian-security' },
    ],
    arches: ['amd64', 'arm64'],
    stage: 'pre-release',
  },
  { name: 'debian-unstable', codename: 'sid', suites: [{ suite: 'sid', mirror: 'debian' }], arches: ['amd64', 'arm64'], stage: 'pre-release' },
  // kernels from experimental alone; everything else (gcc, make, the kernel's other packages) from sid
  { name: 'debian-experimental', codename: 'experimental', base: 'sid', suites: [{ suite: 'experimental', mirror: 'debian' }], arches: ['amd64', 'arm64'], stage: 'pre-release' },
];

/** Pure: the codename of the Debian root a release's toolchain starts from (kfarm/base:<it>). */
export const baseCodename = (spec: Pick<ReleaseSpec, 'codename' | 'base'>): string => spec.base ?? spec.codename;

export const ARCHES: readonly DebianArch[] = ['amd64', 'arm64'];

/** Debian's architecture names and the kernel's (`uname -m`, dkms's arch). */
const UNAME_OF = UNAME_OF_DEBIAN as Readonly<Record<DebianArch, string>>;

export function unameArch(arch: DebianArch): string {
  return UNAME_OF[arch];
}

/** amd64 or x86_64 → amd64; arm64 or aarch64 → arm64; anything else: undefined. */
export function debianArch(name: string): DebianArch | undefined {
  const lower = name.trim().toLowerCase();
  for (const arch of ARCHES) if (lower === arch || lower === UNAME_OF[arch]) return arch;
  return undefined;
}

/**
 * Resolves the CLI's release names (none: every released one; the pre-release suites are
 * named to be read: a vendor's nightly `kfarm images sync` keeps to what ships); an unknown
 * one is bad input naming those that exist. Debian's role names work too (testing, unstable).
 */
export function resolveReleases(names: readonly string[]): ReleaseSpec[] {
  if (names.length === 0) return RELEASES.filter((r) => r.stage === 'released');
  const chosen: ReleaseSpec[] = [];
  for (const name of names) {
    const spec = RELEASES.find((r) => r.name === name || r.codename === name || r.name === `debian-${name}`);
    if (!spec) {
      throw new KfarmError('BAD_OPTION', `kfarm has no recipe for release "${name}"`, {
        context: { release: name },
        hint: `Releases: ${RELEASES.map((r) => `${r.name} (${r.codename})`).join(', ')}.`,
      });
    }
    if (!chosen.includes(spec)) chosen.push(spec);
  }
  return chosen;
}

/** Resolves `--arch a,b` (Debian or uname names; none: every arch). */
export function resolveArches(list: string | undefined): DebianArch[] {
  if (list === undefined) return [...ARCHES];
  const words = list.split(/[\s,]+/).filter(Boolean);
  if (words.length === 0) throw new KfarmError('BAD_OPTION', '--arch is empty', { hint: `Arches: ${ARCHES.join(', ')}.` });
  const chosen: DebianArch[] = [];
  for (const word of words) {
    const arch = debianArch(word);
    if (!arch) {
      throw new KfarmError('BAD_OPTION', `kfarm has no recipe for arch "${word}"`, {
        context: { arch: word },
        hint: `Arches: ${ARCHES.map((a) => `${a} (${UNAME_OF[a]})`).join(', ')}.`,
      });
    }
    if (!chosen.includes(arch)) chosen.push(arch);
  }
  return chosen;
}
