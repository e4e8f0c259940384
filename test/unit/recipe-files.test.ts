import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { catalogFromImages, LABEL_ARCH, LABEL_IMAGE, LABEL_KERNELS, LABEL_RECIPE_FILES } from '../../src/images/catalog.js';
import { currentRecipeFiles, loadRecipe, RECIPES } from '../../src/images/image-builder.js';
import { recipeFilesHash } from '../../src/images/recipe-files.js';
import { imagesDir } from '../../src/paths.js';

const files = { toolchain: Buffer.from('FROM a'), sources: Buffer.from('Types: deb'), kernel: Buffer.from('RUN x') };

describe('recipe files', () => {
  it('every release builds its kernel images from the one images/kernel.Dockerfile', async () => {
    const shared = await readFile(path.join(imagesDir, 'kernel.Dockerfile'));
    for (const name of RECIPES) expect((await loadRecipe(name)).kernel.equals(shared), name).toBe(true);
  });

  it('a change to any recipe file changes the hash; moving bytes between files does too', () => {
    const base = recipeFilesHash(files);
    expect(recipeFilesHash({ ...files })).toBe(base);
    expect(recipeFilesHash({ ...files, kernel: Buffer.from('RUN y') })).not.toBe(base);
    expect(recipeFilesHash({ ...files, toolchain: Buffer.from('FROM b') })).not.toBe(base);
    expect(recipeFilesHash({ ...files, sources: Buffer.from('Types: deb-src') })).not.toBe(base);
    expect(recipeFilesHash({ ...files, toolchain: Buffer.from('FROM aR'), kernel: Buffer.from('UN x') })).not.toBe(base);
    expect(recipeFilesHash({ ...files, cross: { toolchain: Buffer.from(''), kernel: Buffer.from('') } })).not.toBe(base);
  });

  it('arm64 images depend on the cross recipe too; releases differ by their toolchain and sources', async () => {
    const d12 = await loadRecipe('debian-12');
    const d13 = await loadRecipe('debian-13');
    expect(await currentRecipeFiles(d12, 'arm64')).not.toBe(await currentRecipeFiles(d12, 'amd64'));
    expect(await currentRecipeFiles(d12, 'amd64')).not.toBe(await currentRecipeFiles(d13, 'amd64'));
  });

  it('the catalog reads the label from the image', () => {
    const labels = { [LABEL_IMAGE]: 'debian-12', [LABEL_KERNELS]: '6.1.0-57-amd64', [LABEL_ARCH]: 'x86_64' };
    const [labelled] = catalogFromImages([{ id: 'sha256:a', tags: ['kfarm/debian-12:6.1.0-57-amd64'], labels: { ...labels, [LABEL_RECIPE_FILES]: 'abc' } }]);
    const [older] = catalogFromImages([{ id: 'sha256:b', tags: ['kfarm/debian-12:6.1.0-57-amd64'], labels }]);
    expect(labelled?.recipeFiles).toBe('abc');
    expect(older?.recipeFiles).toBeUndefined();
  });
});
