import { KfarmError } from '../errors/kfarm-error.js';
import { UNAME_OF_DEBIAN } from '../matrix/arch-names.js';

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

export interface ReleaseSpec {
  /** kfarm's name, also the image name prefix: debian-12 */
  name: string;
  codename: string;
  suites: readonly ArchiveSuite[];
  arches: readonly DebianArch[];
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

export const RELEASES: readonly ReleaseSpec[] = [
  { name: 'debian-11', codename: 'bullseye', suites: suitesOf('bullseye', false), arches: ['amd64', 'arm64'] },
  { name: 'debian-12', codename: 'bookworm', suites: suitesOf('bookworm', true), arches: ['amd64', 'arm64'] },
  { name: 'debian-13', codename: 'trixie', suites: suitesOf('trixie', true), arches: ['amd64', 'arm64'] },
];

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

/** Resolves the CLI's release names (none: all of them); an unknown one is bad input naming those that exist. */
export function resolveReleases(names: readonly string[]): ReleaseSpec[] {
  if (names.length === 0) return [...RELEASES];
  const chosen: ReleaseSpec[] = [];
  for (const name of names) {
    const spec = RELEASES.find((r) => r.name === name || r.codename === name);
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
