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
  return images.flatMap((img) => img.kernels.map((kernel) => ({ kernel, arch: img.arch, image: img.name, imageRef: img.ref, imageId: img.id })));
}

/**
 * Pure: what the workers advertise → one entry per image name. Workers on different hosts
 * build their images themselves, so one name can have several ids; the id most workers hold
 * wins, and the others are named in `conflicts`: a worker holding another id refuses the jobs
 * (IMAGE_MISMATCH, retried elsewhere), since the id is part of every job's key.
 */
export function catalogFromAdverts(adverts: ReadonlyArray<{ worker: string; images: readonly KfarmImage[] }>): {
  images: KfarmImage[];
  conflicts: string[];
} {
  const byName = new Map<string, Map<string, { image: KfarmImage; workers: string[] }>>();
  for (const advert of adverts) {
    for (const image of advert.images) {
      const versions = byName.get(image.name) ?? new Map<string, { image: KfarmImage; workers: string[] }>();
      const version = versions.get(image.id) ?? { image, workers: [] };
      version.workers.push(advert.worker);
      versions.set(image.id, version);
      byName.set(image.name, versions);
    }
  }
  const images: KfarmImage[] = [];
  const conflicts: string[] = [];
  for (const [name, versions] of [...byName.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    const ranked = [...versions.values()].sort((a, b) => b.workers.length - a.workers.length || a.image.id.localeCompare(b.image.id));
    const chosen = ranked[0];
    if (!chosen) continue;
    images.push(chosen.image);
    if (ranked.length > 1) {
      conflicts.push(
        `workers hold ${ranked.length} different builds of image ${name}: ` +
          ranked.map((v) => `${v.image.id.replace(/^sha256:/, '').slice(0, 12)} on ${v.workers.join(', ')}`).join('; ') +
          `; only the workers holding ${chosen.image.id.replace(/^sha256:/, '').slice(0, 12)} build for it, the others refuse its jobs. ` +
          `Give every worker that build (\`docker save ${chosen.image.ref} | docker load\` on each)`,
      );
    }
  }
  return { images, conflicts };
}

export async function listKfarmImages(runtime: ContainerRuntime): Promise<KfarmImage[]> {
  return catalogFromImages(await runtime.listImages(LABEL_IMAGE));
}
