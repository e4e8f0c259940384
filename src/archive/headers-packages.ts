import type { Stanza } from './deb822.js';

/** One alternative of a Depends entry: `linux-kbuild-5.10 (>= 5.10.218-1)`. */
export interface Dependency {
  name: string;
  relation: string | undefined;
}

/** A `linux-headers-<kver>` ABI package of one index: what kfarm needs to install and build for it. */
export interface HeadersPackage {
  package: string;
  /** `uname -r` of the kernel: 6.1.0-57-amd64, 6.12.117+deb12-cloud-arm64 */
  kernel: string;
  /** the ABI part: 6.1.0-57, 6.12.117+deb12, 6.1.0-0.deb11.52 */
  abi: string;
  /** amd64, cloud-amd64, rt-amd64, arm64, arm64-16k, cloud-arm64, rt-arm64, ... */
  flavour: string;
  /** Debian architecture of the package */
  arch: string;
  /** Debian version of the headers package: 6.1.180-1~deb11u1 */
  version: string;
  source: string | undefined;
  filename: string;
  size: number;
  sha256: string;
  /** each entry: alternatives (a | b) */
  depends: Dependency[][];
  /** linux-headers-<abi>-common (or -common-rt) */
  common: string;
  /** linux-kbuild-5.10, linux-kbuild-6.12.117+deb12 */
  kbuild: string | undefined;
  /** gcc major the kernel was built with, and the package naming it (gcc-12, linux-compiler-gcc-10-x86, gcc-14-for-host) */
  compiler: { gcc: number; package: string } | undefined;
  /** 6.12 headers depend on linux-image-<kver> (| -unsigned): the image builder must avoid pulling it in */
  dependsOnImage: boolean;
}

const COMMON = /^linux-headers-(.+)-common(?:-rt)?$/;

/**
 * Pure: every ABI headers package among the stanzas. An ABI package is recognised by its
 * dependency on its ABI's `-common` package, which gives the ABI exactly; metapackages
 * (linux-headers-amd64, linux-headers-6.12-amd64) depend on an ABI package instead, and the
 * `-common` and `-all` packages are not named `<abi>-<flavour>` of that ABI.
 */
export function headersPackages(stanzas: readonly Stanza[]): HeadersPackage[] {
  const found: HeadersPackage[] = [];
  for (const s of stanzas) {
    const pkg = s.get('package') ?? '';
    if (!pkg.startsWith('linux-headers-')) continue;
    const depends = parseDepends(s.get('depends') ?? '');
    const names = depends.flat().map((d) => d.name);
    const common = names.find((n) => COMMON.test(n));
    const abi = common ? COMMON.exec(common)?.[1] : undefined;
    if (!common || !abi || !pkg.startsWith(`linux-headers-${abi}-`)) continue;
    const flavour = pkg.slice(`linux-headers-${abi}-`.length);
    if (flavour === '' || /^(common|all)(-|$)/.test(flavour)) continue;
    const filename = s.get('filename');
    const sha256 = s.get('sha256');
    const version = s.get('version');
    if (!filename || !sha256 || !version) continue; // a stanza without them cannot be fetched or verified
    found.push({
      package: pkg,
      kernel: `${abi}-${flavour}`,
      abi,
      flavour,
      arch: s.get('architecture') ?? '',
      version,
      source: s.get('source')?.split(/\s/)[0],
      filename,
      size: Number(s.get('size') ?? 0),
      sha256,
      depends,
      common,
      kbuild: names.find((n) => n.startsWith('linux-kbuild-')),
      compiler: compilerOf(names),
      dependsOnImage: names.some((n) => n.startsWith('linux-image-')),
    });
  }
  return found;
}

export function parseDepends(field: string): Dependency[][] {
  return field
    .split(',')
    .map((entry) =>
      entry
        .split('|')
        .map((alt) => {
          const m = /^\s*([^\s(:]+)(?::\S+)?\s*(?:\(([^)]*)\))?/.exec(alt);
          return m?.[1] ? { name: m[1], relation: m[2]?.trim() } : undefined;
        })
        .filter((d): d is Dependency => d !== undefined),
    )
    .filter((alts) => alts.length > 0);
}

function compilerOf(names: readonly string[]): { gcc: number; package: string } | undefined {
  for (const name of names) {
    const m = /^(?:linux-compiler-)?gcc-(\d+)(?:-[a-z0-9-]+)?$/.exec(name); // gcc-12, linux-compiler-gcc-10-x86, gcc-14-for-host (7.x)
    if (m?.[1]) return { gcc: Number(m[1]), package: name };
  }
  return undefined;
}
