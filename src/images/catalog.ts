import type { ContainerRuntime, ImageInfo } from '../executor/runtime.js';
import { compareKernels, type KernelTarget } from '../matrix/kernel-target.js';

/** Labels every kfarm build image carries (set by its Dockerfile). */
export const LABEL_IMAGE = 'io.kfarm.image';
export const LABEL_KERNELS = 'io.kfarm.kernels';
export const LABEL_ARCH = 'io.kfarm.arch';
export const LABEL_RECIPE = 'io.kfarm.recipe-hash';

export interface KfarmImage {
  name: string;
  ref: string;
  id: string;
  arch: string;
  kernels: string[];
}

export const imageRef = (name: string) => `kfarm/${name}:latest`;

/** Pure: the images' labels → one entry per image name, the `latest` tag first. */
export function catalogFromImages(images: readonly ImageInfo[]): KfarmImage[] {
  const byName = new Map<string, KfarmImage>();
  for (const info of images) {
    const name = info.labels[LABEL_IMAGE];
    if (!name) continue; // images derived from a build image blank the label (the dkms oracle)
    const latest = info.tags.find((t) => t === imageRef(name));
    const ref = latest ?? info.tags[0];
    if (!ref) continue;
    const entry: KfarmImage = {
      name,
      ref,
      id: info.id,
      arch: info.labels[LABEL_ARCH] ?? 'x86_64',
      kernels: (info.labels[LABEL_KERNELS] ?? '').split(/\s+/).filter(Boolean).sort(compareKernels),
    };
    const current = byName.get(name);
    if (!current || (latest && current.ref !== imageRef(name))) byName.set(name, entry);
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

export function kernelTargets(images: readonly KfarmImage[]): KernelTarget[] {
  return images.flatMap((img) => img.kernels.map((kernel) => ({ kernel, arch: img.arch, image: img.name, imageRef: img.ref })));
}

export async function listKfarmImages(runtime: ContainerRuntime): Promise<KfarmImage[]> {
  return catalogFromImages(await runtime.listImages(LABEL_IMAGE));
}
