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
}

/** Kernel releases sort by their numeric parts: 6.1.0-9 before 6.1.0-10, 6.1 before 6.12. */
export function compareKernels(a: string, b: string): number {
  const pa = a.split(/[^0-9]+/).filter(Boolean).map(Number);
  const pb = b.split(/[^0-9]+/).filter(Boolean).map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? -1) - (pb[i] ?? -1);
    if (d !== 0) return d;
  }
  return a.localeCompare(b);
}
