import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseStanzas } from '../../src/archive/deb822.js';
import { kernelsOffered, type DiscoveredKernel } from '../../src/archive/discover.js';
import { headersPackages } from '../../src/archive/headers-packages.js';
import { RELEASES, baseCodename, resolveReleases } from '../../src/archive/releases.js';
import { availableCells, availableWithStage, heldRows } from '../../src/cli/kernels-table.js';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { debootstrapArgs } from '../../src/images/base-image.js';
import type { KfarmImage } from '../../src/images/catalog.js';
import { RECIPES } from '../../src/images/image-builder.js';
import { aptDependencies, crossDependencies, crossGcc } from '../../src/images/kernel-recipe.js';
import { kernelImageRef } from '../../src/images/kernel-ref.js';
import { missingPackages } from '../../src/images/missing-dependencies.js';
import { planSync } from '../../src/images/sync-plan.js';
import { nextKernels, selectKernels } from '../../src/matrix/kernel-selector.js';
import { compareKernels, kernelFlavour, type KernelTarget } from '../../src/matrix/kernel-target.js';
import { PRE_RELEASE_NAMES, stageOfRelease } from '../../src/matrix/release-stages.js';
import { packageRoot } from '../../src/paths.js';
import { compareSeriesKernels, kernelAbi, kernelLine } from '../../src/service/regressions/kernel-order.js';

/**
 * The kernels to come (issue 25 §2): Debian testing (forky), unstable (sid) and experimental as
 * releases kfarm syncs and builds for, marked pre-release, selectable with `stage:` and `next`.
 * Archive facts as measured on deb.debian.org, 2026-12-08.
 */
const spec = (name: string) => RELEASES.find((r) => r.name === name);
const recipeFile = (name: string, file: string) => readFileSync(path.join(packageRoot, 'images', name, file), 'utf8');

describe('the pre-release suites in the release table', () => {
  it('debian-testing is forky (with forky-security), debian-unstable sid, debian-experimental experimental on a sid root', () => {
    expect(spec('debian-testing')).toMatchObject({ codename: 'forky', stage: 'pre-release', arches: ['amd64', 'arm64'] });
    expect(spec('debian-testing')?.suites).toEqual([
      { suite: 'forky', mirror: 'debian' },
      { suite: 'forky-security', mirror: 'debian-security' },
    ]);
    expect(spec('debian-unstable')).toMatchObject({ codename: 'sid', stage: 'pre-release', suites: [{ suite: 'sid', mirror: 'debian' }] });
    // kernels from experimental alone: sid's are debian-unstable's
    expect(spec('debian-experimental')).toMatchObject({ codename: 'experimental', base: 'sid', stage: 'pre-release', suites: [{ suite: 'experimental', mirror: 'debian' }] });
    expect(RELEASES.filter((r) => r.stage === 'released').map((r) => r.name)).toEqual(['debian-11', 'debian-12', 'debian-13']);
  });

  it("the selector's list of pre-release names is the table's", () => {
    expect(RELEASES.filter((r) => r.stage === 'pre-release').map((r) => r.name)).toEqual(PRE_RELEASE_NAMES);
    for (const r of RELEASES) expect(stageOfRelease(r.name)).toBe(r.stage);
    expect(stageOfRelease('kfarm-custom')).toBe('released');
    expect(stageOfRelease(undefined)).toBe('released');
  });

  it('are synced and listed when named (kfarm name, codename or Debian role), never by default', () => {
    expect(resolveReleases([]).map((r) => r.name)).toEqual(['debian-11', 'debian-12', 'debian-13']);
    expect(resolveReleases(['testing', 'forky', 'unstable', 'sid', 'experimental', 'debian-experimental']).map((r) => r.name)).toEqual([
      'debian-testing',
      'debian-unstable',
      'debian-experimental',
    ]);
    try {
      resolveReleases(['rc-buggy']);
      expect.unreachable();
    } catch (err) {
      expect(isKfarmError(err, 'BAD_OPTION')).toBe(true);
      expect((err as { hint: string }).hint).toContain('debian-testing (forky), debian-unstable (sid), debian-experimental (experimental)');
    }
  });

  it('each has a recipe whose apt sources are its suites (experimental: on sid), on the root its base names', () => {
    for (const name of PRE_RELEASE_NAMES) expect(RECIPES as readonly string[]).toContain(name);
    const suites = (name: string) => [...recipeFile(name, 'debian.sources').matchAll(/^Suites: (.+)$/gm)].flatMap((m) => (m[1] ?? '').split(' '));
    expect(suites('debian-testing')).toEqual(['forky', 'forky-security']);
    expect(suites('debian-unstable')).toEqual(['sid']);
    expect(suites('debian-experimental')).toEqual(['sid', 'experimental']);
    for (const name of PRE_RELEASE_NAMES) {
      const release = spec(name)!;
      expect(recipeFile(name, 'toolchain.Dockerfile')).toContain(`ARG BASE_IMAGE=kfarm/base:${baseCodename(release)}`);
    }
    expect(baseCodename(spec('debian-experimental')!)).toBe('sid');
    expect(baseCodename(spec('debian-13')!)).toBe('trixie');
  });

  it("a codename the host's debootstrap has no script for (forky on bookworm's 1.0.128) is bootstrapped with sid's", () => {
    expect(debootstrapArgs('forky', '/tmp/root', 'http://deb.debian.org/debian', false)).toEqual([
      '--variant=minbase',
      'forky',
      '/tmp/root',
      'http://deb.debian.org/debian',
      '/usr/share/debootstrap/scripts/sid',
    ]);
    expect(debootstrapArgs('sid', '/tmp/root', 'http://deb.debian.org/debian', true)).toEqual(['--variant=minbase', 'sid', '/tmp/root', 'http://deb.debian.org/debian']);
  });
});

describe("experimental's kernels: named without an ABI number", () => {
  const text = readFileSync(path.join(packageRoot, 'test', 'fixtures', 'archive', 'experimental-headers.Packages'), 'utf8');
  const packages = headersPackages(parseStanzas(text));

  it('are read as kernels: 7.3-amd64 of ABI 7.3, compiled by gcc 16; the -common package is not one', () => {
    expect(packages.map((p) => [p.kernel, p.abi, p.flavour, p.arch])).toEqual([
      ['7.3-amd64', '7.3', 'amd64', 'amd64'],
      ['7.3-cloud-amd64', '7.3', 'cloud-amd64', 'amd64'],
      ['7.3-rt-amd64', '7.3', 'rt-amd64', 'amd64'],
      ['7.3-arm64', '7.3', 'arm64', 'arm64'],
      ['7.3-arm64-16k', '7.3', 'arm64-16k', 'arm64'],
    ]);
    expect(packages[0]).toMatchObject({
      version: '7.3~rc7-1~exp1',
      compiler: { gcc: 16, package: 'gcc-16-for-host' },
      kbuild: 'linux-kbuild-7.3',
      common: 'linux-headers-7.3-common',
    });
    const arm64 = packages.find((p) => p.kernel === '7.3-arm64')!;
    expect(crossGcc(arm64)).toBe(16);
    // apt on amd64 installs the arch:all -common and the amd64 kbuild, not the arm64 linux-base-<kver> nor gcc
    expect(crossDependencies(arm64)).toEqual(['linux-base', 'linux-headers-7.3-common=7.3~rc7-1~exp1', 'linux-kbuild-7.3']);
    expect(aptDependencies(packages[0]!)).toEqual([
      'gcc-16-for-host',
      'linux-base',
      'linux-base-7.3-amd64=7.3~rc7-1~exp1',
      'linux-headers-7.3-common=7.3~rc7-1~exp1',
      'linux-kbuild-7.3',
    ]);
  });

  it('are offered per release and arch, newest first', () => {
    const offered = kernelsOffered([{ release: 'debian-experimental', suite: 'experimental', baseUrl: 'http://deb.debian.org/debian', arch: 'amd64', text }], RELEASES);
    expect(offered.map((k) => k.kernel)).toEqual(['7.3-amd64', '7.3-cloud-amd64', '7.3-rt-amd64']);
    expect(offered[0]?.url).toBe('http://deb.debian.org/debian/pool/main/l/linux/linux-headers-7.3-amd64_7.3~rc7-1~exp1_amd64.deb');
  });

  it('sort after every 7.2 (sid, forky) and before a 7.3 upload with an ABI, flavours by name', () => {
    const names = ['7.3.1+deb14-amd64', '7.3-rt-amd64', '7.2.13+deb14-amd64', '7.3-amd64', '7.2.12+deb14-cloud-amd64', '7.3-cloud-amd64', '6.12.57+deb13-amd64'];
    expect([...names].sort(compareKernels)).toEqual([
      '6.12.57+deb13-amd64',
      '7.2.12+deb14-cloud-amd64',
      '7.2.13+deb14-amd64',
      '7.3-amd64',
      '7.3-cloud-amd64',
      '7.3-rt-amd64',
      '7.3.1+deb14-amd64',
    ]);
    expect(['7.3-arm64-16k', '7.3-arm64', '7.3-cloud-arm64'].map(kernelFlavour)).toEqual(['arm64-16k', 'arm64', 'cloud-arm64']);
  });

  it('the regressions view puts 7.3-amd64 on the 7.3 line, before 7.3.1+deb14', () => {
    expect(kernelAbi('7.3-amd64', 'amd64')).toBe('7.3');
    expect(kernelAbi('7.3-cloud-amd64')).toBe('7.3');
    expect(kernelLine('7.3-rt-amd64', 'rt-amd64')).toBe('7.3');
    expect(['7.3.1+deb14-amd64', '7.3-amd64'].sort((a, b) => compareSeriesKernels(a, b, 'amd64'))).toEqual(['7.3-amd64', '7.3.1+deb14-amd64']);
  });
});

const target = (kernel: string, image: string, release?: string): KernelTarget => ({
  kernel,
  arch: kernel.includes('arm64') ? 'aarch64' : 'x86_64',
  image,
  imageRef: kernelImageRef(image, kernel),
  imageId: `sha256:${image}-${kernel}`,
  ...(release ? { release } : {}),
});
const FARM: KernelTarget[] = [
  target('6.1.0-57-amd64', 'debian-12'),
  target('6.12.57+deb13-amd64', 'debian-13'),
  target('6.12.57+deb13-arm64', 'debian-13'),
  target('7.2.12+deb14-amd64', 'debian-testing'),
  target('7.2.11+deb14-amd64', 'debian-testing'),
  target('7.2.12+deb14-cloud-amd64', 'debian-testing'),
  target('7.2.12+deb14-arm64', 'debian-testing'),
  target('7.2.13+deb14-amd64', 'debian-unstable'),
  target('7.2.10+deb14-amd64', 'debian-unstable'),
  target('7.3-amd64', 'debian-experimental'),
  target('7.3-arm64', 'debian-experimental'),
  target('7.3-arm64-16k', 'debian-experimental'),
];
const pick = (selector: string, farm = FARM) => selectKernels(selector, farm).map((t) => `${t.image}:${t.kernel}`);

describe('selector terms for the kernels to come', () => {
  it('stage:released and stage:pre-release split the farm; one negated term leaves the pre-release kernels out of all', () => {
    expect(pick('stage:released')).toEqual(['debian-12:6.1.0-57-amd64', 'debian-13:6.12.57+deb13-amd64', 'debian-13:6.12.57+deb13-arm64']);
    expect(pick('all,!stage:pre-release')).toEqual(pick('stage:released'));
    expect(pick('stage:pre-release')).toHaveLength(9);
    expect(pick('stage:pre-release arch:arm64')).toEqual(['debian-testing:7.2.12+deb14-arm64', 'debian-experimental:7.3-arm64', 'debian-experimental:7.3-arm64-16k']);
    // a release label (discovery's targets) wins over the image name
    expect(pick('stage:pre-release', [target('7.2.13+deb14-amd64', 'archive', 'debian-unstable'), target('6.1.0-57-amd64', 'archive', 'debian-12')])).toEqual([
      'archive:7.2.13+deb14-amd64',
    ]);
  });

  it('next: the newest kernel of each pre-release suite, per arch and flavour', () => {
    expect(pick('next')).toEqual([
      'debian-testing:7.2.12+deb14-amd64',
      'debian-testing:7.2.12+deb14-arm64',
      'debian-testing:7.2.12+deb14-cloud-amd64',
      'debian-unstable:7.2.13+deb14-amd64',
      'debian-experimental:7.3-amd64',
      'debian-experimental:7.3-arm64',
      'debian-experimental:7.3-arm64-16k',
    ]);
    expect(pick('next,!release:debian-experimental arch:amd64 !*-cloud-*')).toEqual(['debian-testing:7.2.12+deb14-amd64', 'debian-unstable:7.2.13+deb14-amd64']);
    // like new, next narrows as a kernel term does: next or the 6.1 kernels
    expect(pick('next,6.1.*')).toContain('debian-12:6.1.0-57-amd64');
    expect(pick('stage:pre-release,!next')).toEqual(['debian-unstable:7.2.10+deb14-amd64', 'debian-testing:7.2.11+deb14-amd64']);
    expect([...nextKernels(FARM.filter((t) => stageOfRelease(t.image) === 'released'))]).toEqual([]);
  });

  it('a stage that is not one is bad input naming the stages; next on a farm without pre-release kernels says how to add them', () => {
    for (const bad of ['stage:', 'stage:beta', 'stage:prerelease']) {
      try {
        pick(bad);
        expect.unreachable();
      } catch (err) {
        expect(isKfarmError(err, 'BAD_OPTION'), bad).toBe(true);
        expect((err as { hint: string }).hint).toBe('Stages: stage:released, stage:pre-release.');
      }
    }
    try {
      pick('next', FARM.slice(0, 3));
      expect.unreachable();
    } catch (err) {
      expect(isKfarmError(err, 'KERNEL_SELECTOR_EMPTY')).toBe(true);
      expect((err as { hint: string }).hint).toContain('kfarm images sync debian-unstable');
    }
  });
});

describe('kfarm kernels marks the pre-release kernels', () => {
  it('held: a STAGE per kernel, by its image', () => {
    expect(
      heldRows([
        { name: 'debian-12', arch: 'x86_64', kernels: ['6.1.0-57-amd64'] },
        { name: 'debian-experimental', arch: 'x86_64', kernels: ['7.3-amd64'] },
      ]),
    ).toEqual([
      ['6.1.0-57-amd64', 'x86_64', 'debian-12', 'released'],
      ['7.3-amd64', 'x86_64', 'debian-experimental', 'pre-release'],
    ]);
  });

  it('--available: a stage per row, in the JSON and the table', () => {
    const row = {
      kernel: '7.2.13+deb14-amd64',
      release: 'debian-unstable',
      arch: 'amd64',
      flavour: 'amd64',
      suite: 'sid',
      headersVersion: '7.2.13-1',
      held: false,
      fetchable: true,
      reason: undefined,
    };
    const rows = availableWithStage([row, { ...row, kernel: '6.12.57+deb13-amd64', release: 'debian-13', suite: 'trixie' }]);
    expect(rows.map((r) => r.stage)).toEqual(['pre-release', 'released']);
    expect(availableCells(rows)[0]).toEqual(['7.2.13+deb14-amd64', 'debian-unstable', 'pre-release', 'amd64', 'amd64', 'sid', '7.2.13-1', '-', 'yes']);
  });
});

describe('images sync for the pre-release suites', () => {
  const offer = (kernel: string, version: string, release: string): DiscoveredKernel => {
    const abi = kernel.replace(/-((?:cloud-|rt-)?amd64)$/, '');
    return {
      package: `linux-headers-${kernel}`,
      kernel,
      abi,
      flavour: kernel.slice(abi.length + 1),
      arch: 'amd64',
      version,
      source: 'linux',
      filename: `pool/main/l/linux/linux-headers-${kernel}_${version}_amd64.deb`,
      size: 1000,
      sha256: 'ab'.repeat(32),
      depends: [],
      common: `linux-headers-${abi}-common`,
      kbuild: `linux-kbuild-${abi}`,
      compiler: { gcc: 16, package: 'gcc-16-for-host' },
      dependsOnImage: false,
      release,
      suite: release === 'debian-experimental' ? 'experimental' : 'sid',
      url: `http://deb.debian.org/debian/pool/${kernel}.deb`,
      fetch: { fetchable: true },
    };
  };
  const held = (name: string, kernel: string, headersVersion: string): KfarmImage => ({
    name,
    ref: kernelImageRef(name, kernel),
    id: `sha256:${kernel}`,
    arch: 'x86_64',
    kernels: [kernel],
    headersVersion,
  });
  const scope = { releases: ['debian-unstable', 'debian-experimental'], arches: ['amd64' as const], prune: true };

  it('--prune drops the kernels sid moved past, and a new rc of experimental (same name, new headers) is rebuilt', () => {
    const plan = planSync(
      [
        held('debian-unstable', '7.2.12+deb14-amd64', '7.2.12-1'),
        held('debian-unstable', '7.2.13+deb14-amd64', '7.2.13-1'),
        held('debian-experimental', '7.3-amd64', '7.3~rc6-1~exp1'),
      ],
      [offer('7.2.13+deb14-amd64', '7.2.13-1', 'debian-unstable'), offer('7.3-amd64', '7.3~rc7-1~exp1', 'debian-experimental')],
      scope,
    );
    expect(plan.prune.map((i) => `${i.name}:${i.kernels[0]}`)).toEqual(['debian-unstable:7.2.12+deb14-amd64']);
    expect(plan.unchanged.map((i) => i.kernels[0])).toEqual(['7.2.13+deb14-amd64']);
    expect(plan.add.map((k) => [k.kernel, k.version, k.replaces?.headersVersion])).toEqual([['7.3-amd64', '7.3~rc7-1~exp1', '7.3~rc6-1~exp1']]);
  });

  it('when 7.3 leaves experimental, its image is pruned; the same kernel name in another suite is that suite’s', () => {
    const plan = planSync([held('debian-experimental', '7.3-amd64', '7.3~rc7-1~exp1')], [offer('7.3.1+deb14-amd64', '7.3.1-1', 'debian-unstable')], scope);
    expect(plan.prune.map((i) => i.kernels[0])).toEqual(['7.3-amd64']);
    expect(plan.add.map((k) => `${k.release}:${k.kernel}`)).toEqual(['debian-unstable:7.3.1+deb14-amd64']);
  });
});

describe('a pre-release kernel that is early: what apt could not find', () => {
  it('reads the packages from apt 2 output (BuildKit-prefixed or not), each once', () => {
    expect(missingPackages(['#7 3.120 E: Unable to locate package gcc-16-for-host'])).toEqual(['gcc-16-for-host']);
    expect(missingPackages(["E: Package 'linux-kbuild-7.2' has no installation candidate"])).toEqual(['linux-kbuild-7.2']);
    expect(missingPackages(["E: Version '7.2.13-1' for 'linux-headers-7.2.13+deb14-common' was not found"])).toEqual(['linux-headers-7.2.13+deb14-common']);
    expect(
      missingPackages([
        'The following packages have unmet dependencies:',
        ' linux-headers-7.2.13+deb14-common : Depends: linux-kbuild-7.2 (>= 7.2.13-1) but it is not installable',
        '                                     Depends: gcc-16-for-host but it is not installable',
        ' linux-base-7.2.13+deb14-amd64 : Depends: linux-base (>= 4.12~) but 4.11 is to be installed',
        'E: Unable to correct problems, you have held broken packages.',
        'E: Unable to locate package gcc-16-for-host',
      ]),
    ).toEqual(['linux-kbuild-7.2', 'gcc-16-for-host', 'linux-base']);
  });

  it("reads sid's apt 3.3.3 (recorded 2026-12-08 in a sid root: a package depending on a missing one and on a newer libc6)", () => {
    const recorded = [
      'The following packages have unmet dependencies:',
      ' kfarm-probe : Depends: gcc-99-for-host but it is not installable',
      '               Depends: libc6 (>= 99) but 2.43-7 is to be installed',
      'E: Unable to satisfy dependencies. Reached two conflicting assignments:',
      '   1. kfarm-probe:amd64=1 is selected for install',
      '   2. kfarm-probe:amd64 Depends gcc-99-for-host',
      '      but none of the choices are installable:',
      '      [no choices]',
      "E: Version '9.9-1' for 'linux-kbuild-7.2.13+deb14' was not found",
    ];
    expect(missingPackages(recorded)).toEqual(['gcc-99-for-host', 'libc6', 'linux-kbuild-7.2.13+deb14']);
  });

  it('reads them when the image builder\'s output split apt\'s "E:" from its message (recorded from a kernel image build, 2026-12-08)', () => {
    const recorded = [
      'Reading state information...',
      'Package linux-kbuild-7.2.13+deb14 is not available, but is referred to by another package.',
      'This may mean that the package is missing, has been obsoleted, or',
      'is only available from another source',
      'E:',
      "Package 'linux-kbuild-7.2.13+deb14' has no installation candidate",
      'Removing intermediate container 8f338794db4c',
    ];
    expect(missingPackages(recorded)).toEqual(['linux-kbuild-7.2.13+deb14']);
  });

  it('finds nothing in a failure of another kind (a network error, a full disk, a dpkg error)', () => {
    expect(
      missingPackages([
        'E: Failed to fetch http://deb.debian.org/debian/pool/main/l/linux/linux-kbuild-7.2_7.2.13-1_amd64.deb  Temporary failure resolving deb.debian.org',
        'E: Write error - write (28: No space left on device)',
        'E: Sub-process /usr/bin/dpkg returned an error code (1)',
        'no headers for 7.2.13+deb14-amd64',
      ]),
    ).toEqual([]);
  });
});
