import { describe, expect, it } from 'vitest';
import { catalogFromAdverts, catalogFromImages, kernelTargets, type KfarmImage } from '../../src/images/catalog.js';

const labels = (kernels: string, extra: Record<string, string> = {}) => ({ 'io.kfarm.image': 'debian-12', 'io.kfarm.kernels': kernels, 'io.kfarm.arch': 'x86_64', ...extra });

describe('image catalog', () => {
  it('lists one target per kernel with the id of the image that holds it, skipping images with a blank name label', () => {
    const catalog = catalogFromImages([
      { id: 'sha256:a', tags: ['kfarm/debian-12:6.1.0-56-amd64', 'kfarm/debian-12:latest'], labels: labels('6.1.0-56-amd64', { 'io.kfarm.headers-version': '6.1.192-2' }) },
      { id: 'sha256:b', tags: ['kfarm/debian-12:6.12.117_deb12-amd64'], labels: labels('6.12.117+deb12-amd64') },
      { id: 'sha256:c', tags: ['kfarm/debian-12:6.1.0-9-amd64'], labels: labels('6.1.0-9-amd64') },
      { id: 'oracle', tags: ['kfarm-test/dkms-oracle:x'], labels: { 'io.kfarm.image': '' } },
    ]);
    expect(catalog.map((i) => [i.kernels, i.ref, i.id])).toEqual([
      [['6.1.0-9-amd64'], 'kfarm/debian-12:6.1.0-9-amd64', 'sha256:c'],
      [['6.1.0-56-amd64'], 'kfarm/debian-12:6.1.0-56-amd64', 'sha256:a'],
      [['6.12.117+deb12-amd64'], 'kfarm/debian-12:6.12.117_deb12-amd64', 'sha256:b'],
    ]);
    expect(catalog[1]?.headersVersion).toBe('6.1.192-2');
    expect(kernelTargets(catalog).map((t) => [t.kernel, t.imageId])).toEqual([
      ['6.1.0-9-amd64', 'sha256:c'],
      ['6.1.0-56-amd64', 'sha256:a'],
      ['6.12.117+deb12-amd64', 'sha256:b'],
    ]);
  });

  it("prefers a kernel's own image over an older many-kernel image holding it too, then :latest", () => {
    const catalog = catalogFromImages([
      { id: 'old', tags: ['kfarm/debian-12:abc'], labels: labels('6.1.0-9-amd64 6.1.0-10-amd64') },
      { id: 'own', tags: ['kfarm/debian-12:6.1.0-10-amd64'], labels: labels('6.1.0-10-amd64') },
      { id: 'latest', tags: ['kfarm/debian-12:latest'], labels: labels('6.1.0-9-amd64') },
    ]);
    expect(catalog.map((i) => [i.kernels[0], i.id])).toEqual([
      ['6.1.0-9-amd64', 'latest'],
      ['6.1.0-10-amd64', 'own'],
    ]);
  });
});

describe('catalog from worker adverts', () => {
  const image = (id: string, kernels: string[]): KfarmImage => ({ name: 'debian-12', ref: `kfarm/debian-12:${kernels[0] ?? ''}`, id, arch: 'x86_64', kernels });

  it('is empty without workers', () => {
    expect(catalogFromAdverts([])).toEqual({ images: [], conflicts: [] });
  });

  it('takes the build of a kernel most workers hold, and names the others', () => {
    const { images, conflicts } = catalogFromAdverts([
      { worker: 'a', images: [image('sha256:111111111111aaaa', ['6.1.0-56-amd64'])] },
      { worker: 'b', images: [image('sha256:222222222222bbbb', ['6.1.0-56-amd64'])] },
      { worker: 'c', images: [image('sha256:222222222222bbbb', ['6.1.0-56-amd64'])] },
    ]);
    expect(images.map((i) => i.id)).toEqual(['sha256:222222222222bbbb']);
    expect(conflicts).toHaveLength(1);
    expect(conflicts[0]).toContain('for kernel 6.1.0-56-amd64');
    expect(conflicts[0]).toContain('222222222222 on b, c; 111111111111 on a');
  });

  it('sees no conflict between images of different kernels: each kernel has its own id', () => {
    const { images, conflicts } = catalogFromAdverts([
      { worker: 'a', images: [image('sha256:1', ['6.1.0-55-amd64']), image('sha256:2', ['6.1.0-56-amd64'])] },
      { worker: 'b', images: [image('sha256:2', ['6.1.0-56-amd64'])] },
    ]);
    expect(images.map((i) => [i.kernels[0], i.id])).toEqual([
      ['6.1.0-55-amd64', 'sha256:1'],
      ['6.1.0-56-amd64', 'sha256:2'],
    ]);
    expect(conflicts).toEqual([]);
  });

  it('agrees silently when every worker holds the same build', () => {
    const same = image('sha256:1', ['6.1.0-55-amd64']);
    expect(
      catalogFromAdverts([
        { worker: 'a', images: [same] },
        { worker: 'b', images: [same] },
      ]),
    ).toEqual({ images: [same], conflicts: [] });
  });
});
