import { createHash } from 'node:crypto';

/** The recipe files one kernel image is made from: the release's toolchain, its sources, the kernel recipe, and for arm64 the cross recipe. */
export interface RecipeFiles {
  toolchain: Buffer;
  sources: Buffer;
  kernel: Buffer;
  /** images/cross/: the arm64 cross toolchain and kernel recipes (absent for amd64) */
  cross?: { toolchain: Buffer; kernel: Buffer };
}

/**
 * Pure: which recipe made an image, as the `io.kfarm.recipe-files` label says. Unlike the cache
 * hash (recipe-hash: also the toolchain image's id, the headers version and any mirror), it
 * names only kfarm's own files, so `images sync` can tell an image built by an older recipe from
 * one built from another mirror or base image, and rebuild only the former.
 */
export function recipeFilesHash(files: RecipeFiles): string {
  const hash = createHash('sha256');
  const part = (name: string, data: Buffer) => hash.update(`${name}\0${data.length}\0`).update(data);
  part('toolchain', files.toolchain);
  part('sources', files.sources);
  part('kernel', files.kernel);
  if (files.cross) {
    part('cross-toolchain', files.cross.toolchain);
    part('cross-kernel', files.cross.kernel);
  }
  return hash.digest('hex');
}
