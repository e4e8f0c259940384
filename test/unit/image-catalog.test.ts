import { describe, expect, it } from 'vitest';
import { catalogFromAdverts, catalogFromImages, type KfarmImage } from '../../src/images/catalog.js';

describe('image catalog', () => {
  it('reads kernels from labels, prefers :latest, skips images with a blank name label', () => {
    const catalog = catalogFromImages([
      { id: 'old', tags: ['kfarm/debian-12:abc'], labels: { 'io.kfarm.image': 'debian-12', 'io.kfarm.kernels': '6.1.0-9-amd64' } },
      { id: 'new', tags: ['kfarm/debian-12:latest'], labels: { 'io.kfarm.image': 'debian-12', 'io.kfarm.kernels': '6.12.1-amd64 6.1.0-10-amd64', 'io.kfarm.arch': 'x86_64' } },
      { id: 'oracle', tags: ['kfarm-test/dkms-oracle:x'], labels: { 'io.kfarm.image': '' } },
    ]);
    expect(catalog).toEqual([{ name: 'debian-12', ref: 'kfarm/debian-12:latest', id: 'new', arch: 'x86_64', kernels: ['6.1.0-10-amd64', '6.12.1-amd64'] }]);
  });
});

describe('catalog from worker adverts', () => {
  const image = (id: string, kernels: string[]): KfarmImage => ({ name: 'debian-12', ref: 'kfarm/debian-12:latest', id, arch: 'x86_64', kernels });

  it('is empty without workers', () => {
    expect(catalogFromAdverts([])).toEqual({ images: [], conflicts: [] });
  });

  it('takes the build most workers hold, and names the others', () => {
    const { images, conflicts } = catalogFromAdverts([
      { worker: 'a', images: [image('sha256:111111111111aaaa', ['6.1.0-55-amd64'])] },
      { worker: 'b', images: [image('sha256:222222222222bbbb', ['6.1.0-56-amd64'])] },
      { worker: 'c', images: [image('sha256:222222222222bbbb', ['6.1.0-56-amd64'])] },
    ]);
    expect(images.map((i) => i.id)).toEqual(['sha256:222222222222bbbb']);
    expect(conflicts).toHaveLength(1);
    expect(conflicts[0]).toContain('222222222222 on b, c; 111111111111 on a');
  });

  it('agrees silently when every worker holds the same build', () => {
    const same = image('sha256:1', ['6.1.0-55-amd64']);
    expect(catalogFromAdverts([{ worker: 'a', images: [same] }, { worker: 'b', images: [same] }])).toEqual({ images: [same], conflicts: [] });
  });
});
