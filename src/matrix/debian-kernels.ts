import { KfarmError } from '../errors/kfarm-error.js';
import { compareKernels } from './kernel-target.js';
import { selectKernels } from './kernel-selector.js';

/**
 * Which kernels a Debian archive offers headers for, from `apt-cache pkgnames linux-headers-`
 * output. Only real ABI packages count (linux-headers-6.1.0-28-amd64), not the metapackages
 * (linux-headers-amd64, linux-headers-6.12-amd64) or -common parts. A Debian point upload of the
 * same upstream version gets a dotted suffix (6.12.115+deb13.1-amd64), a kernel of its own; a newer
 * kernel built for an older release carries it in its ABI (bullseye-security's 6.1.0-0.deb11.52-amd64).
 */
const VERSION_PART = String.raw`\d+\.\d+\.\d+(?:-\d+(?:\.deb\d+\.\d+)?)?(?:\+deb\d+(?:\.\d+)?)?`;
const HEADERS_PACKAGE = new RegExp(`^linux-headers-(${VERSION_PART}-(?:cloud-|rt-)?amd64)$`);
const GENERIC_AMD64 = new RegExp(`^${VERSION_PART}-amd64$`);

export function parseHeaderPackages(pkgnames: string): string[] {
  const kernels = new Set<string>();
  for (const line of pkgnames.split('\n')) {
    const match = HEADERS_PACKAGE.exec(line.trim());
    if (match?.[1]) kernels.add(match[1]);
  }
  return [...kernels].sort(compareKernels);
}

/**
 * The default kernel set of a debian-12 image: the two newest 6.1 ABIs and the newest 6.12,
 * generic amd64 flavour. Chosen from what the archive has today, so it does not rot.
 */
export function defaultDebian12Kernels(available: readonly string[]): string[] {
  const generic = available.filter((k) => GENERIC_AMD64.test(k));
  const series = (prefix: string) => generic.filter((k) => k.startsWith(prefix)).sort(compareKernels);
  const picked = [...series('6.1.').slice(-2), ...series('6.12.').slice(-1)];
  if (picked.length === 0) {
    throw new KfarmError('IMAGE_BUILD_FAILED', 'the Debian archive offers no 6.1 or 6.12 amd64 kernel headers', {
      hint: 'Check the apt sources in images/debian-12/debian.sources, or pass --kernels explicitly.',
    });
  }
  return picked;
}

/** Resolves `kfarm images build --kernels <selector>` against the archive's list. */
export function resolveImageKernels(selector: string | undefined, available: readonly string[]): string[] {
  if (selector === undefined) return defaultDebian12Kernels(available);
  const targets = available.map((kernel) => ({ kernel, arch: 'x86_64', image: 'archive', imageRef: '', imageId: '' }));
  return selectKernels(selector, targets).map((t) => t.kernel);
}
