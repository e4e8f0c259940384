import { describe, expect, it } from 'vitest';
import { defaultDebian12Kernels, parseHeaderPackages, resolveImageKernels } from '../../src/matrix/debian-kernels.js';
import { selectKernels } from '../../src/matrix/kernel-selector.js';
import { compareKernels, type KernelTarget } from '../../src/matrix/kernel-target.js';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { mergeHistory, newKernels, parseHistory } from '../../src/matrix/new-kernels.js';

const t = (kernel: string, image = 'debian-12'): KernelTarget => ({ kernel, arch: 'x86_64', image, imageRef: `kfarm/${image}:latest`, imageId: `sha256:${image}` });
const AVAILABLE = [t('6.1.0-9-amd64'), t('6.1.0-10-amd64'), t('6.1.0-10-rt-amd64'), t('6.12.117+deb12-amd64'), t('5.10.0-30-amd64', 'debian-11')];

describe('selectKernels', () => {
  it('selects everything with all, sorted by version', () => {
    expect(selectKernels('all', AVAILABLE).map((k) => k.kernel)).toEqual(['5.10.0-30-amd64', '6.1.0-9-amd64', '6.1.0-10-amd64', '6.1.0-10-rt-amd64', '6.12.117+deb12-amd64']);
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
    'linux-headers-6.1.0-55-amd64',
    'linux-headers-6.1.0-55-cloud-amd64',
    'linux-headers-6.1.0-55-common',
    'linux-headers-6.1.0-56-amd64',
    'linux-headers-6.1.0-56-rt-amd64',
    'linux-headers-6.1.0-47-amd64',
    'linux-headers-6.12-amd64',
    'linux-headers-6.12.107+deb12-amd64',
    'linux-headers-6.12.117+deb12-amd64',
    'linux-headers-6.12.117+deb12-common',
    'linux-headers-amd64',
    'linux-headers-cloud-amd64',
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

describe('selector terms for arch and release', () => {
  const at = (kernel: string, arch: string, image: string, release?: string): KernelTarget => ({
    kernel,
    arch,
    image,
    imageRef: `kfarm/${image}:latest`,
    imageId: `sha256:${image}`,
    ...(release ? { release } : {}),
  });
  const FARM = [
    at('5.10.0-46-amd64', 'x86_64', 'debian-11'),
    at('6.1.0-57-amd64', 'x86_64', 'debian-12'),
    at('6.1.0-57-arm64', 'aarch64', 'debian-12-arm64'),
    at('6.12.117+deb12-amd64', 'x86_64', 'debian-12'),
    at('6.12.118+deb13-arm64', 'aarch64', 'kfarm-trixie', 'debian-13'),
    at('6.12.118+deb13-rt-amd64', 'x86_64', 'debian-13'),
  ];
  const names = (selector: string, context = {}) => selectKernels(selector, FARM, context).map((k) => k.kernel);

  it('arch: takes Debian and uname names alike', () => {
    expect(names('arch:arm64')).toEqual(['6.1.0-57-arm64', '6.12.118+deb13-arm64']);
    expect(names('arch:aarch64')).toEqual(names('arch:arm64'));
    expect(names('arch:x86_64')).toEqual(names('arch:amd64'));
    expect(names('arch:AMD64')).toHaveLength(4);
  });

  it('release: matches the release label, else the image name or its prefix', () => {
    expect(names('release:debian-12')).toEqual(['6.1.0-57-amd64', '6.1.0-57-arm64', '6.12.117+deb12-amd64']);
    expect(names('release:debian-13')).toEqual(['6.12.118+deb13-arm64', '6.12.118+deb13-rt-amd64']);
    expect(names('release:debian-1*')).toHaveLength(6);
  });

  it('kinds combine (and), terms of one kind are alternatives (or), negation of any kind excludes', () => {
    expect(names('arch:arm64 release:debian-12')).toEqual(['6.1.0-57-arm64']);
    expect(names('arch:arm64,6.12.*')).toEqual(['6.12.118+deb13-arm64']);
    expect(names('release:debian-11,release:debian-13,arch:amd64')).toEqual(['5.10.0-46-amd64', '6.12.118+deb13-rt-amd64']);
    expect(names('all,!arch:arm64,!release:debian-11')).toEqual(['6.1.0-57-amd64', '6.12.117+deb12-amd64', '6.12.118+deb13-rt-amd64']);
    expect(names('!arch:x86_64')).toEqual(['6.1.0-57-arm64', '6.12.118+deb13-arm64']);
    expect(names('debian-12:6.1.*')).toEqual(['6.1.0-57-amd64']);
  });

  it('an empty arch or release term is bad input; one that matches nothing says what exists', () => {
    expect(() => names('arch:')).toThrow(/names no arch/);
    try {
      names('arch:riscv64');
      expect.unreachable();
    } catch (err) {
      expect(isKfarmError(err, 'KERNEL_SELECTOR_EMPTY')).toBe(true);
    }
  });

  it('new: the kernels the last build did not cover, combinable; refused without a build history', () => {
    const lastBuilt = [
      { kernel: '5.10.0-46-amd64', arch: 'x86_64' },
      { kernel: '6.1.0-57-amd64', arch: 'amd64' },
      { kernel: '6.12.117+deb12-amd64', arch: 'x86_64' },
    ];
    expect(names('new', { lastBuilt })).toEqual(['6.1.0-57-arm64', '6.12.118+deb13-arm64', '6.12.118+deb13-rt-amd64']);
    expect(names('new,arch:arm64', { lastBuilt })).toEqual(['6.1.0-57-arm64', '6.12.118+deb13-arm64']);
    expect(names('new', { lastBuilt: [] })).toHaveLength(6);
    expect(() => names('new')).toThrow(/build history/);
  });
});

describe('new kernels for --kernels new', () => {
  const held = [
    { kernel: '6.1.0-57-amd64', arch: 'x86_64' },
    { kernel: '6.1.0-57-arm64', arch: 'aarch64' },
    { kernel: '6.1.0-58-amd64', arch: 'x86_64' },
    { kernel: '6.1.0-9-amd64', arch: 'x86_64' },
  ];

  it('is what is held and was not built last time, oldest first; arch names either way; never built: all', () => {
    expect(
      newKernels(held, [
        { kernel: '6.1.0-57-amd64', arch: 'amd64' },
        { kernel: '6.1.0-57-arm64', arch: 'arm64' },
        { kernel: '6.1.0-1-amd64', arch: 'x86_64' },
      ]),
    ).toEqual([
      { kernel: '6.1.0-9-amd64', arch: 'x86_64' },
      { kernel: '6.1.0-58-amd64', arch: 'x86_64' },
    ]);
    expect(newKernels(held, [])).toHaveLength(4);
    expect(newKernels(held, held)).toEqual([]);
  });

  it('the same kernel on another arch is new', () => {
    expect(newKernels([{ kernel: 'x', arch: 'aarch64' }], [{ kernel: 'x', arch: 'x86_64' }])).toHaveLength(1);
  });

  it('history accumulates across builds and reads back; a damaged or foreign file is "never built"', () => {
    const first = mergeHistory(undefined, 'hello', [{ kernel: '6.1.0-57-amd64', arch: 'amd64' }]);
    const second = mergeHistory(parseHistory(JSON.stringify(first), 'hello'), 'hello', [{ kernel: '6.1.0-58-amd64', arch: 'x86_64' }]);
    expect(second).toEqual({
      module: 'hello',
      kernels: [
        { kernel: '6.1.0-57-amd64', arch: 'x86_64' },
        { kernel: '6.1.0-58-amd64', arch: 'x86_64' },
      ],
    });
    expect(parseHistory('{not json', 'hello')).toBeUndefined();
    expect(parseHistory(JSON.stringify(second), 'other')).toBeUndefined();
    expect(parseHistory('{"module":"hello","kernels":[{"kernel":"a","arch":"x86_64"},{"kernel":7}]}', 'hello')?.kernels).toEqual([{ kernel: 'a', arch: 'x86_64' }]);
  });

  it('kernel releases order by version, not by digits in the flavour', () => {
    expect(['6.12.115+deb13.1-amd64', '6.12.115+deb13-amd64', '6.12.116+deb13-amd64'].sort(compareKernels)).toEqual([
      '6.12.115+deb13-amd64',
      '6.12.115+deb13.1-amd64',
      '6.12.116+deb13-amd64',
    ]);
    expect(['6.1.0-57-arm64-16k', '6.1.0-57-arm64', '6.1.0-9-rt-arm64'].sort(compareKernels)).toEqual(['6.1.0-9-rt-arm64', '6.1.0-57-arm64', '6.1.0-57-arm64-16k']);
    expect(['6.17.7-300.fc43.x86_64', '6.17.10-300.fc43.x86_64'].sort(compareKernels)).toEqual(['6.17.7-300.fc43.x86_64', '6.17.10-300.fc43.x86_64']);
  });
});
