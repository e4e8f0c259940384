/** One kernel that kfarm can build for, and the image whose headers it lives in. */
export interface KernelTarget {
  /** the kernel release, as `uname -r` prints it: 6.1.0-28-amd64 */
  kernel: string;
  /** dkms's arch for it: x86_64 */
  arch: string;
  /** kfarm image name: debian-12 */
  image: string;
  /** the Docker reference to run: kfarm/debian-12:latest */
  imageRef: string;
  /** the image's id where the build was planned: part of the job key, so a rebuilt image (a new compiler) is never served a result built with the old one */
  imageId: string;
  /** the distro release the image was made for (debian-12), where the image says; else its name tells */
  release?: string;
}

/** the kernel's version part and its flavour: 6.12.115+deb13.1 / cloud-arm64-16k (digits in a flavour are not a version) */
function splitFlavour(kernel: string): [string, string] {
  const m = /^(.*?)-([A-Za-z][A-Za-z0-9_-]*)$/.exec(kernel);
  return m?.[1] && m[2] ? [m[1], m[2]] : [kernel, ''];
}

/** Pure: a kernel release's flavour: amd64, cloud-arm64-16k, rt-amd64 ('' when it names none) */
export const kernelFlavour = (kernel: string): string => splitFlavour(kernel)[1];

/**
 * Kernel releases sort by their numeric parts: 6.1.0-9 before 6.1.0-10, 6.1 before 6.12, +deb13
 * before +deb13.1; experimental's names without an ABI (7.3-amd64, a 7.3 rc) after every 7.2 and
 * before 7.3.1+deb14 (a missing part is below any number).
 */
export function compareKernels(a: string, b: string): number {
  const [va, fa] = splitFlavour(a);
  const [vb, fb] = splitFlavour(b);
  const pa = va
    .split(/[^0-9]+/)
    .filter(Boolean)
    .map(Number);
  const pb = vb
    .split(/[^0-9]+/)
    .filter(Boolean)
    .map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? -1) - (pb[i] ?? -1);
    if (d !== 0) return d;
  }
  return fa.localeCompare(fb) || a.localeCompare(b);
}
