import type { ContainerRuntime, ImageInfo } from '../executor/runtime.js';
import { compareKernels, type KernelTarget } from '../matrix/kernel-target.js';
import { kernelImageRef } from './kernel-ref.js';

/** Labels every kfarm build image carries (set when kfarm builds it). */
export const LABEL_IMAGE = 'io.kfarm.image';
export const LABEL_KERNELS = 'io.kfarm.kernels';
export const LABEL_ARCH = 'io.kfarm.arch';
export const LABEL_RECIPE = 'io.kfarm.recipe-hash';
export const LABEL_RELEASE = 'io.kfarm.release';
export const LABEL_FLAVOUR = 'io.kfarm.flavour';
export const LABEL_HEADERS_VERSION = 'io.kfarm.headers-version';
/** which of kfarm's recipe files made the image (recipe-files.ts); absent on images of kfarm before it */
export const LABEL_RECIPE_FILES = 'io.kfarm.recipe-files';

export interface KfarmImage {
  name: string;
  ref: string;
  id: string;
  arch: string;
  kernels: string[];
  /** the Debian version of the headers package, when the image holds one kernel and says */
  headersVersion?: string;
  /** the recipe files that made it (LABEL_RECIPE_FILES), when the image says */
  recipeFiles?: string;
}

/** the tag `kfarm images build` also points at one of the release's kernel images, for tools that want "the debian-12 image" */
export const imageRef = (name: string) => `kfarm/${name}:latest`;

const short = (id: string) => id.replace(/^sha256:/, '').slice(0, 12);

/**
 * Pure: the images' labels → one entry per (image name, kernel), each naming the image that
 * holds that kernel: with one image per kernel, adding a kernel leaves the others' ids alone.
 * When two local images hold the same kernel (a multi-kernel image of the older layout next
 * to the kernel's own image), the kernel's own image wins, then the `latest` tag.
 */
export function catalogFromImages(images: readonly ImageInfo[]): KfarmImage[] {
  const best = new Map<string, { image: KfarmImage; rank: number }>();
  for (const info of images) {
    const name = info.labels[LABEL_IMAGE];
    if (!name) continue; // images derived from a build image blank the label (the dkms oracle)
    const kernels = (info.labels[LABEL_KERNELS] ?? '').split(/\s+/).filter(Boolean);
    for (const kernel of kernels) {
      const own = info.tags.find((t) => t === kernelImageRef(name, kernel));
      const latest = info.tags.find((t) => t === imageRef(name));
      const ref = own ?? latest ?? info.tags[0];
      if (!ref) continue;
      const rank = own ? 0 : latest ? 1 : 2;
      const headersVersion = kernels.length === 1 ? info.labels[LABEL_HEADERS_VERSION] : undefined;
      const recipeFiles = info.labels[LABEL_RECIPE_FILES];
      const image: KfarmImage = {
        name,
        ref,
        id: info.id,
        arch: info.labels[LABEL_ARCH] ?? 'x86_64',
        kernels: [kernel],
        ...(headersVersion ? { headersVersion } : {}),
        ...(recipeFiles ? { recipeFiles } : {}),
      };
      const key = `${name}\0${kernel}`;
      const current = best.get(key);
      if (!current || rank < current.rank) best.set(key, { image, rank });
    }
  }
  return [...best.values()].map((b) => b.image).sort(byNameThenKernel);
}

function byNameThenKernel(a: KfarmImage, b: KfarmImage): number {
  return a.name.localeCompare(b.name) || compareKernels(a.kernels[0] ?? '', b.kernels[0] ?? '');
}

export function kernelTargets(images: readonly KfarmImage[]): KernelTarget[] {
  return images.flatMap((img) => img.kernels.map((kernel) => ({ kernel, arch: img.arch, image: img.name, imageRef: img.ref, imageId: img.id })));
}

/**
 * Pure: what the workers advertise → one entry per (image name, kernel). Workers on different
 * hosts build their images themselves, so one kernel can be in images of different ids; the id
 * most workers hold wins, and the others are named in `conflicts`: a worker holding another id
 * refuses the jobs (IMAGE_MISMATCH, retried elsewhere), since the id is part of every job's key.
 * A worker still on the one-image-many-kernels layout is read per kernel too.
 */
export function catalogFromAdverts(adverts: ReadonlyArray<{ worker: string; images: readonly KfarmImage[] }>): {
  images: KfarmImage[];
  conflicts: string[];
} {
  const byKernel = new Map<string, Map<string, { image: KfarmImage; workers: string[] }>>();
  for (const advert of adverts) {
    for (const image of advert.images) {
      for (const kernel of image.kernels) {
        const key = `${image.name}\0${kernel}`;
        const versions = byKernel.get(key) ?? new Map<string, { image: KfarmImage; workers: string[] }>();
        const version = versions.get(image.id) ?? { image: { ...image, kernels: [kernel] }, workers: [] };
        if (!version.workers.includes(advert.worker)) version.workers.push(advert.worker);
        versions.set(image.id, version);
        byKernel.set(key, versions);
      }
    }
  }
  const images: KfarmImage[] = [];
  const conflicts: string[] = [];
  for (const versions of byKernel.values()) {
    const ranked = [...versions.values()].sort((a, b) => b.workers.length - a.workers.length || a.image.id.localeCompare(b.image.id));
    const chosen = ranked[0];
    if (!chosen) continue;
    images.push(chosen.image);
    if (ranked.length > 1) {
      conflicts.push(
        `workers hold ${ranked.length} different builds of image ${chosen.image.name} for kernel ${chosen.image.kernels[0] ?? '?'}: ` +
          ranked.map((v) => `${short(v.image.id)} on ${v.workers.join(', ')}`).join('; ') +
          `; only the workers holding ${short(chosen.image.id)} build for it, the others refuse its jobs. ` +
          `Give every worker that build (\`docker save ${chosen.image.ref} | docker load\` on each)`,
      );
    }
  }
  return { images: images.sort(byNameThenKernel), conflicts };
}

export async function listKfarmImages(runtime: ContainerRuntime): Promise<KfarmImage[]> {
  return catalogFromImages(await runtime.listImages(LABEL_IMAGE));
}
