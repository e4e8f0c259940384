import { createHash } from 'node:crypto';
import type { HeadersPackage } from '../archive/headers-packages.js';
import { KfarmError } from '../errors/kfarm-error.js';

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

/** a compiler package the headers name: gcc-12, linux-compiler-gcc-10-arm, gcc-14-for-host */
const COMPILER = /^(?:linux-compiler-)?gcc-\d+(?:-[a-z0-9-]+)?$/;

/**
 * Pure: what apt installs (amd64 side) next to an arm64 headers package: its arch:all -common
 * and the amd64 linux-kbuild (host tools), with every dependency but the kernel image and
 * the compiler; the cross compiler comes from the cross toolchain image.
 */
export function crossDependencies(pkg: Pick<HeadersPackage, 'depends'>): string[] {
  return aptDependencies({ depends: pkg.depends.filter((alts) => !alts.some((d) => COMPILER.test(d.name) || ARCH_ONLY.test(d.name))) });
}

/**
 * arm64-only packages apt on amd64 cannot install: 7.x headers depend on linux-base-<kver>
 * (the installed kernel's System.map, config, modules.builtin), which a module build does not
 * read (it reads the headers' own .config and Module.symvers).
 */
const ARCH_ONLY = /^linux-base-\d/;

/** Pure: the gcc major an arm64 kernel is cross-built with (from its headers' compiler dependency). */
export function crossGcc(pkg: Pick<HeadersPackage, 'kernel' | 'compiler'>): number {
  const gcc = pkg.compiler?.gcc;
  if (gcc === undefined || !Number.isInteger(gcc) || gcc < 4 || gcc > 99) {
    throw new KfarmError('IMAGE_BUILD_FAILED', `the headers of ${pkg.kernel} name no gcc to cross-build with`, {
      context: { kernel: pkg.kernel },
      hint: 'Its headers package has no gcc-N or linux-compiler-gcc-N-* dependency; kfarm cannot tell which cross compiler it needs.',
    });
  }
  return gcc;
}

/** Pure: kfarm/debian-12-toolchain:arm64-gcc-12, the release's toolchain with that cross compiler. */
export const crossToolchainRef = (release: string, gcc: number): string => `kfarm/${release}-toolchain:arm64-gcc-${gcc}`;

/** Pure: the content hash a cross toolchain image is cached by. */
export function crossToolchainHash(recipe: Buffer, toolchainId: string, gcc: number): string {
  return createHash('sha256').update(recipe).update(`\0toolchain\0${toolchainId}\0gcc\0${gcc}`).digest('hex');
}

/**
 * Pure: the build arguments of an arm64 kernel image, checked at the border: the URL and hash
 * come from the archive's index and end up in a shell inside the build.
 */
export function crossBuildArgs(toolchainRef: string, pkg: Pick<HeadersPackage, 'kernel' | 'version' | 'sha256' | 'depends'> & { url: string }): Record<string, string> {
  const url = safeUrl(pkg.url);
  if (!/^[0-9a-f]{64}$/.test(pkg.sha256) || !url || !/^[A-Za-z0-9.+_-]+$/.test(pkg.kernel) || !/^[A-Za-z0-9.+~:_-]+$/.test(pkg.version)) {
    throw new KfarmError('IMAGE_BUILD_FAILED', `the archive's entry for ${pkg.kernel} is not usable (URL, SHA256 or version)`, {
      context: { kernel: pkg.kernel, url: pkg.url, sha256: pkg.sha256, version: pkg.version },
      hint: 'The index may be damaged: delete $KFARM_STATE_DIR/archive and run `kfarm kernels --available` again.',
    });
  }
  return { TOOLCHAIN: toolchainRef, KERNEL: pkg.kernel, HEADERS_VERSION: pkg.version, HEADERS_URL: url, HEADERS_SHA256: pkg.sha256, DEPENDS: crossDependencies(pkg).join(' ') };
}

function safeUrl(text: string): string | undefined {
  try {
    const url = new URL(text);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
    return /^[A-Za-z0-9:/._~+%-]+$/.test(url.href) ? url.href : undefined;
  } catch {
    return undefined;
  }
}

/** Pure: the content hash an arm64 kernel image is cached by: recipe, cross toolchain id, and the exact headers file. */
export function crossKernelRecipeHash(recipe: Buffer, crossToolchainId: string, pkg: Pick<HeadersPackage, 'kernel' | 'version' | 'sha256' | 'depends'>): string {
  return createHash('sha256')
    .update(recipe)
    .update(`\0cross-toolchain\0${crossToolchainId}\0kernel\0${pkg.kernel}\0version\0${pkg.version}\0sha256\0${pkg.sha256}\0depends\0${crossDependencies(pkg).join(' ')}`)
    .digest('hex');
}
