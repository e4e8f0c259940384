import { createHash } from 'node:crypto';
import type { HeadersPackage } from '../archive/headers-packages.js';

/**
 * Pure: what apt installs next to a kernel's headers package: every dependency but the kernel
 * image (6.12 headers depend on linux-image-<kver>, ~100 MB no module build reads). An `=`
 * relation is pinned (the -common of the same upload); alternatives take the first that is not
 * a kernel image. The headers package itself is installed with dpkg, see kernel.Dockerfile.
 */
export function aptDependencies(pkg: Pick<HeadersPackage, 'depends'>): string[] {
  const names: string[] = [];
  for (const alternatives of pkg.depends) {
    const pick = alternatives.find((d) => !d.name.startsWith('linux-image-'));
    if (!pick) continue;
    const pinned = /^=\s*(\S+)$/.exec(pick.relation ?? '');
    const word = pinned?.[1] ? `${pick.name}=${pinned[1]}` : pick.name;
    if (!names.includes(word)) names.push(word);
  }
  return names;
}

/** Pure: the content hash a kernel image is cached by: recipe, toolchain image id, kernel, headers version, what apt installs. */
export function kernelRecipeHash(recipe: Buffer, toolchainId: string, pkg: Pick<HeadersPackage, 'kernel' | 'version' | 'depends'>): string {
  return createHash('sha256')
    .update(recipe)
    .update(`\0toolchain\0${toolchainId}\0kernel\0${pkg.kernel}\0version\0${pkg.version}\0depends\0${aptDependencies(pkg).join(' ')}`)
    .digest('hex');
}
