import { describe, expect, it } from 'vitest';
import { defaultDebian12Kernels, parseHeaderPackages, resolveImageKernels } from '../../src/matrix/debian-kernels.js';
import { selectKernels } from '../../src/matrix/kernel-selector.js';
import { compareKernels, type KernelTarget } from '../../src/matrix/kernel-target.js';
import { isKfarmError } from '../../src/errors/kfarm-error.js';

const t = (kernel: string, image = 'debian-12'): KernelTarget => ({ kernel, arch: 'x86_64', image, imageRef: `kfarm/${image}:latest`, imageId: `sha256:${image}` });
const AVAILABLE = [t('6.1.0-9-amd64'), t('6.1.0-10-amd64'), t('6.1.0-10-rt-amd64'), t('6.12.117+deb12-amd64'), t('5.10.0-30-amd64', 'debian-11')];

describe('selectKernels', () => {
  it('selects everything with all, sorted by version', () => {
    expect(selectKernels('all', AVAILABLE).map((k) => k.kernel)).toEqual([
      '5.10.0-30-amd64', '6.1.0-9-amd64', '6.1.0-10-amd64', '6.1.0-10-rt-amd64', '6.12.117+deb12-amd64',
    ]);
  });

  it('matches exact names, globs, image-scoped terms and negations', () => {
    expect(selectKernels('6.1.0-9-amd64', AVAILABLE).map((k) => k.kernel)).toEqual(['6.1.0-9-amd64']);
    expect(selectKernels('6.1.*,!*-rt-*', AVAILABLE).map((k) => k.kernel)).toEqual(['6.1.0-9-amd64', '6.1.0-10-amd64']);
    expect(selectKernels('debian-11:*', AVAILABLE).map((k) => k.image)).toEqual(['debian-11']);
    expect(selectKernels('!6.1.*', AVAILABLE).map((k) => k.kernel)).toEqual(['5.10.0-30-amd64', '6.12.117+deb12-amd64']);
  });

  it('does not treat dots as wildcards', () => {
    expect(() => selectKernels('6x1*', AVAILABLE)).toThrow();
  });

  it('says which kernels exist when nothing matches', () => {
    try {
      selectKernels('7.*', AVAILABLE);
      expect.unreachable();
    } catch (err) {
      expect(isKfarmError(err, 'KERNEL_SELECTOR_EMPTY')).toBe(true);
      expect((err as { hint: string }).hint).toContain('debian-12:6.1.0-9-amd64');
    }
  });
});

describe('Debian archive kernels', () => {
  // Recorded: `apt-cache pkgnames linux-headers-` in bookworm (abridged).
  const PKGNAMES = [
    'linux-headers-6.1.0-55-amd64', 'linux-headers-6.1.0-55-cloud-amd64', 'linux-headers-6.1.0-55-common',
    'linux-headers-6.1.0-56-amd64', 'linux-headers-6.1.0-56-rt-amd64', 'linux-headers-6.1.0-47-amd64',
    'linux-headers-6.12-amd64', 'linux-headers-6.12.107+deb12-amd64', 'linux-headers-6.12.117+deb12-amd64',
    'linux-headers-6.12.117+deb12-common', 'linux-headers-amd64', 'linux-headers-cloud-amd64',
  ].join('\n');

  it('keeps real ABI packages only, flavours included, metapackages and -common out', () => {
    const kernels = parseHeaderPackages(PKGNAMES);
    expect(kernels).toContain('6.1.0-55-cloud-amd64');
    expect(kernels).not.toContain('6.12-amd64');
    expect(kernels.some((k) => k.includes('common'))).toBe(false);
    expect(kernels[0]).toBe('6.1.0-47-amd64');
  });

  it('defaults to the two newest 6.1 ABIs and the newest 6.12, generic flavour', () => {
    expect(defaultDebian12Kernels(parseHeaderPackages(PKGNAMES))).toEqual(['6.1.0-55-amd64', '6.1.0-56-amd64', '6.12.117+deb12-amd64']);
  });

  it('resolves an explicit selector against the archive', () => {
    expect(resolveImageKernels('6.12.*', parseHeaderPackages(PKGNAMES))).toEqual(['6.12.107+deb12-amd64', '6.12.117+deb12-amd64']);
  });

  it('orders kernel releases numerically', () => {
    expect(['6.1.0-10-amd64', '6.1.0-9-amd64', '6.12.1-amd64'].sort(compareKernels)).toEqual(['6.1.0-9-amd64', '6.1.0-10-amd64', '6.12.1-amd64']);
  });
});
