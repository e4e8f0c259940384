/**
 * Pure: the Docker names of the per-kernel layout. A tag may not hold `+` (6.12.117+deb12), so
 * it becomes `_`; the kernel itself is always read from the image's label, never from its tag.
 */
export const kernelTag = (kernel: string): string => kernel.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 128);

/** kfarm/debian-12:6.12.117_deb12-amd64 */
export const kernelImageRef = (release: string, kernel: string): string => `kfarm/${release}:${kernelTag(kernel)}`;

/** the per-release image every kernel image of that release starts FROM */
export const toolchainRef = (release: string): string => `kfarm/${release}-toolchain:latest`;
