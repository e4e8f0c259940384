import type { Logger } from '../logging/logger.js';
import { compareKernels } from '../matrix/kernel-target.js';
import { parseStanzas } from './deb822.js';
import { compareDebianVersions } from './debian-version.js';
import { checkFetchable, type Fetchability } from './fetchability.js';
import { headersPackages, type HeadersPackage } from './headers-packages.js';
import { fetchReleaseFile } from './index-store.js';
import { kernelStanzas } from './package-stanzas.js';
import { mapLimit } from '../util/map-limit.js';
import { DEFAULT_MIRRORS, type DebianArch, type Mirror, type ReleaseSpec } from './releases.js';

/** A kernel the archive offers: its headers package, where it lives, and whether it can be fetched. */
export interface ArchiveKernel extends HeadersPackage {
  release: string;
  suite: string;
  /** the full URL of the headers .deb */
  url: string;
}

export interface DiscoveredKernel extends ArchiveKernel {
  fetch: Fetchability;
}

export interface SuiteArchIndex {
  release: string;
  suite: string;
  mirror: Mirror;
  baseUrl: string;
  arch: DebianArch;
  /** the InRelease's Date */
  date: string | undefined;
  text: string;
  fromCache: boolean;
}

export interface Discovery {
  kernels: DiscoveredKernel[];
  indexes: Array<Omit<SuiteArchIndex, 'text'>>;
  /** suites the mirror does not serve, and the like: worth printing, not failing for */
  warnings: string[];
}

export interface DiscoverOptions {
  cacheDir: string;
  logger: Logger;
  mirrors?: Readonly<Record<Mirror, string>>;
  keyring?: string;
  /** skip the HEAD checks (every kernel is then reported fetchable: unchecked) */
  checkFetch?: boolean;
  headConcurrency?: number;
  headTimeoutMs?: number;
}

/**
 * Every kernel the archive offers for these releases and arches. The archive unreachable is
 * an error (COMMAND_FAILED); a listed file that is gone is a kernel marked unfetchable.
 */
export async function discoverKernels(releases: readonly ReleaseSpec[], arches: readonly DebianArch[], options: DiscoverOptions): Promise<Discovery> {
  const mirrors = options.mirrors ?? DEFAULT_MIRRORS;
  const store = { cacheDir: options.cacheDir, logger: options.logger, ...(options.keyring ? { keyring: options.keyring } : {}) };
  const warnings: string[] = [];
  const suites = releases.flatMap((r) => r.suites.map((s) => ({ release: r, ...s, baseUrl: mirrors[s.mirror] })));
  const releaseFiles = await mapLimit(suites, 6, async (s) => ({ s, file: await fetchReleaseFile(s.baseUrl, s.suite, store) }));
  const jobs = releaseFiles.flatMap(({ s, file }) => {
    if (!file) {
      warnings.push(`${s.baseUrl} does not serve ${s.suite} (no InRelease): its kernels are left out`);
      return [];
    }
    return arches.filter((a) => s.release.arches.includes(a)).map((arch) => ({ s, file, arch }));
  });
  // the big main indexes first, so the small ones fill in around them
  const indexes = await mapLimit(jobs, 4, async ({ s, file, arch }): Promise<SuiteArchIndex | undefined> => {
    const got = await kernelStanzas(s.baseUrl, s.mirror, s.suite, arch, file, store);
    if (!got) {
      warnings.push(`${s.suite} has no main/binary-${arch} index`);
      return undefined;
    }
    return { release: s.release.name, suite: s.suite, mirror: s.mirror, baseUrl: s.baseUrl, arch, date: file.date, ...got };
  });
  const present = indexes.filter((i): i is SuiteArchIndex => i !== undefined);
  const offered = kernelsOffered(present, releases);
  const fetch: Fetchability[] =
    options.checkFetch === false
      ? offered.map(() => ({ fetchable: true }))
      : await checkFetchable(
          offered.map((k) => ({ url: k.url, size: k.size })),
          { ...(options.headConcurrency ? { concurrency: options.headConcurrency } : {}), ...(options.headTimeoutMs ? { timeoutMs: options.headTimeoutMs } : {}) },
        );
  return {
    kernels: offered.map((k, i) => ({ ...k, fetch: fetch[i] ?? { fetchable: false, reason: 'not checked' } })),
    indexes: present.map(({ text: _text, ...rest }) => rest),
    warnings,
  };
}

/**
 * Pure: the indexes' headers packages, one per (release, arch, kernel): a kernel listed in
 * several suites (trixie and trixie-security) is the one with the highest package version,
 * the release's earlier suite on a tie. Newest kernel first.
 */
export function kernelsOffered(indexes: ReadonlyArray<Pick<SuiteArchIndex, 'release' | 'suite' | 'baseUrl' | 'arch' | 'text'>>, releases: readonly ReleaseSpec[]): ArchiveKernel[] {
  const suiteRank = (release: string, suite: string) => releases.find((r) => r.name === release)?.suites.findIndex((s) => s.suite === suite) ?? 0;
  const best = new Map<string, ArchiveKernel>();
  for (const index of indexes) {
    for (const pkg of headersPackages(parseStanzas(index.text))) {
      if (pkg.arch !== index.arch) continue;
      const kernel: ArchiveKernel = { ...pkg, release: index.release, suite: index.suite, url: `${index.baseUrl}/${pkg.filename}` };
      const key = `${index.release}/${index.arch}/${pkg.kernel}`;
      const current = best.get(key);
      const better =
        !current ||
        compareDebianVersions(kernel.version, current.version) > 0 ||
        (compareDebianVersions(kernel.version, current.version) === 0 && suiteRank(kernel.release, kernel.suite) < suiteRank(current.release, current.suite));
      if (better) best.set(key, kernel);
    }
  }
  return [...best.values()].sort(newestFirst);
}

/** Newest ABI first; within one ABI, flavours in name order, then arch and release. */
export function newestFirst(a: Pick<ArchiveKernel, 'abi' | 'flavour' | 'arch' | 'release'>, b: Pick<ArchiveKernel, 'abi' | 'flavour' | 'arch' | 'release'>): number {
  return compareKernels(b.abi, a.abi) || a.flavour.localeCompare(b.flavour) || a.arch.localeCompare(b.arch) || a.release.localeCompare(b.release);
}
