import { compareDebianVersions } from '../../archive/debian-version.js';

/**
 * Pure: where a kernel sits in its series. Debian names a kernel `<abi>-<flavour>` (6.1.0-57-amd64,
 * 6.12.48+deb13-cloud-arm64, 6.1.0-0.deb11.52-amd64), and the ABI grows with every upload that
 * changes it, so ABIs compared as Debian versions give the upload order: 6.1.0-9 before
 * 6.1.0-10, 6.12.48+deb13 before 6.12.48+deb13.1 before 6.12.57+deb13.
 */

/** The ABI part of a kernel name: the flavour suffix removed (when the flavour is unknown, the trailing non-numeric words). */
export function kernelAbi(kernel: string, flavour?: string): string {
  if (flavour && kernel.endsWith(`-${flavour}`) && kernel.length > flavour.length + 1) return kernel.slice(0, -(flavour.length + 1));
  const m = /^(.*?)-([A-Za-z][A-Za-z0-9_-]*)$/.exec(kernel);
  return m?.[1] ?? kernel;
}

/**
 * The upstream line a kernel belongs to (6.1, 6.12, 5.10). One release and flavour can carry two
 * lines at once (bookworm's 6.1.0-N-amd64 and 6.12.x+deb12-amd64, bullseye's 5.10.0-N-amd64 and
 * 6.1.0-0.deb11.N-amd64), each its own source package with its own changelog and its own
 * uploads: mixed in one series, a module that fails on 6.1.0-57 but builds on 6.12 would read as
 * "fixed" and hide the broken 6.1 fleet.
 */
export function kernelLine(kernel: string, flavour?: string): string {
  const m = /^(\d+\.\d+)/.exec(kernelAbi(kernel, flavour));
  return m?.[1] ?? '';
}

/** Upload order of two kernels of one series (ABIs as Debian versions; the name breaks ties). */
export function compareSeriesKernels(a: string, b: string, flavour?: string): number {
  return compareDebianVersions(kernelAbi(a, flavour), kernelAbi(b, flavour)) || (a < b ? -1 : a > b ? 1 : 0);
}
