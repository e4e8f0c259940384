import { describe, expect, it } from 'vitest';
import type { DiscoveredKernel } from '../../src/archive/discover.js';
import { parseDepends } from '../../src/archive/headers-packages.js';
import type { KfarmImage } from '../../src/images/catalog.js';
import { aptDependencies, kernelRecipeHash } from '../../src/images/kernel-recipe.js';
import { kernelImageRef, kernelTag } from '../../src/images/kernel-ref.js';
import { describePlan, planSync } from '../../src/images/sync-plan.js';

const offer = (kernel: string, version: string, extra: Partial<DiscoveredKernel> = {}): DiscoveredKernel => {
  const m = /^(.*?)-((?:cloud-|rt-)?amd64)$/.exec(kernel);
  return {
    package: `linux-headers-${kernel}`,
    kernel,
    abi: m?.[1] ?? kernel,
    flavour: m?.[2] ?? 'amd64',
    arch: 'amd64',
    version,
    source: 'linux',
    filename: `pool/main/l/linux/linux-headers-${kernel}_${version}_amd64.deb`,
    size: 1000,
    sha256: 'ab'.repeat(32),
    depends: [],
    common: `linux-headers-${m?.[1] ?? kernel}-common`,
    kbuild: 'linux-kbuild-6.1',
    compiler: { gcc: 12, package: 'linux-compiler-gcc-12-x86' },
    dependsOnImage: false,
    release: 'debian-12',
    suite: 'bookworm-security',
    url: `http://deb.debian.org/debian-security/pool/${kernel}.deb`,
    fetch: { fetchable: true },
    ...extra,
  };
};
const held = (kernel: string, headersVersion?: string, name = 'debian-12'): KfarmImage => ({
  name,
  ref: kernelImageRef(name, kernel),
  id: `sha256:${kernel}`,
  arch: 'x86_64',
  kernels: [kernel],
  ...(headersVersion ? { headersVersion } : {}),
});
const scope = { releases: ['debian-12'], arches: ['amd64' as const], prune: false };

describe('images sync plan', () => {
  it('adds what is offered and not held, keeps what is held, newest kernels sorted by version', () => {
    const plan = planSync([held('6.1.0-56-amd64', '6.1.192-2')], [offer('6.1.0-57-amd64', '6.1.192-3'), offer('6.1.0-56-amd64', '6.1.192-2'), offer('6.1.0-9-amd64', '6.1.27-1')], scope);
    expect(plan.add.map((k) => k.kernel)).toEqual(['6.1.0-9-amd64', '6.1.0-57-amd64']);
    expect(plan.unchanged.map((i) => i.kernels[0])).toEqual(['6.1.0-56-amd64']);
    expect(plan.prune).toEqual([]);
    expect(describePlan(plan)).toBe('2 to add, 1 unchanged');
  });

  it('says nothing to do when every offered kernel is held', () => {
    const plan = planSync([held('6.1.0-56-amd64', '6.1.192-2')], [offer('6.1.0-56-amd64', '6.1.192-2')], scope);
    expect(plan.add).toEqual([]);
    expect(describePlan(plan)).toMatch(/^nothing to do: 1 kernel\(s\) held/);
  });

  it('skips and reports unfetchable kernels, and never adds them', () => {
    const plan = planSync([], [offer('6.1.0-0.deb11.9-amd64', '6.1.27-1~deb11u1', { fetch: { fetchable: false, reason: 'HTTP 404' } })], scope);
    expect(plan.add).toEqual([]);
    expect(plan.unfetchable.map((k) => k.kernel)).toEqual(['6.1.0-0.deb11.9-amd64']);
    expect(describePlan(plan)).toContain('1 offered but not fetchable');
  });

  it('prunes held kernels the archive no longer offers only with --prune, and names them otherwise', () => {
    const offered = [offer('6.1.0-57-amd64', '6.1.192-3')];
    const have = [held('6.1.0-57-amd64', '6.1.192-3'), held('6.1.0-40-amd64', '6.1.150-1')];
    const kept = planSync(have, offered, scope);
    expect(kept.prune).toEqual([]);
    expect(kept.gone.map((i) => i.kernels[0])).toEqual(['6.1.0-40-amd64']);
    const pruned = planSync(have, offered, { ...scope, prune: true });
    expect(pruned.prune.map((i) => i.kernels[0])).toEqual(['6.1.0-40-amd64']);
    expect(describePlan(pruned)).toBe('0 to add, 1 unchanged, 1 to prune');
  });

  it('rebuilds a held kernel whose headers package has a new version', () => {
    const plan = planSync([held('6.1.0-57-amd64', '6.1.192-2')], [offer('6.1.0-57-amd64', '6.1.192-3')], scope);
    expect(plan.add.map((k) => [k.kernel, k.replaces?.headersVersion])).toEqual([['6.1.0-57-amd64', '6.1.192-2']]);
  });

  it('limits additions to the flavours asked for, never pruning the others', () => {
    const offered = [offer('6.1.0-57-amd64', '6.1.192-3'), offer('6.1.0-57-rt-amd64', '6.1.192-3'), offer('6.1.0-57-cloud-amd64', '6.1.192-3')];
    const plan = planSync([held('6.1.0-57-rt-amd64', '6.1.192-3')], offered, { ...scope, flavours: ['amd64'], prune: true });
    expect(plan.add.map((k) => k.kernel)).toEqual(['6.1.0-57-amd64']);
    expect(plan.unchanged.map((i) => i.kernels[0])).toEqual(['6.1.0-57-rt-amd64']);
    expect(plan.prune).toEqual([]);
  });

  it('leaves releases and arches out of scope alone', () => {
    const plan = planSync(
      [held('6.1.0-40-amd64', '6.1.150-1', 'debian-13'), { ...held('6.1.0-40-arm64', '6.1.150-1'), arch: 'aarch64' }],
      [offer('6.12.1+deb13-amd64', '6.12.1-1', { release: 'debian-13' }), offer('6.1.0-57-arm64', '6.1.192-3', { arch: 'arm64', flavour: 'arm64' })],
      { ...scope, prune: true },
    );
    expect(plan).toEqual({ add: [], prune: [], gone: [], unchanged: [], unfetchable: [] });
  });
});

describe('kernel image recipe', () => {
  it('installs every dependency but the kernel image, pinning = relations', () => {
    const depends = parseDepends(
      'linux-base (>= 4.12~), linux-headers-6.12.117+deb12-common (= 6.12.117-1~deb12u1), linux-image-6.12.117+deb12-amd64 (= 6.12.117-1~deb12u1) | linux-image-6.12.117+deb12-amd64-unsigned (= 6.12.117-1~deb12u1), linux-kbuild-6.12.117+deb12, gcc-12',
    );
    expect(aptDependencies({ depends })).toEqual(['linux-base', 'linux-headers-6.12.117+deb12-common=6.12.117-1~deb12u1', 'linux-kbuild-6.12.117+deb12', 'gcc-12']);
    const old = parseDepends('linux-headers-6.1.0-56-common (= 6.1.192-2), linux-kbuild-6.1 (>= 6.1.192-2), linux-compiler-gcc-12-x86');
    expect(aptDependencies({ depends: old })).toEqual(['linux-headers-6.1.0-56-common=6.1.192-2', 'linux-kbuild-6.1', 'linux-compiler-gcc-12-x86']);
  });

  it('names images by a tag Docker accepts, and caches by recipe, toolchain, kernel and headers version', () => {
    expect(kernelTag('6.12.117+deb12-amd64')).toBe('6.12.117_deb12-amd64');
    expect(kernelImageRef('debian-12', '6.1.0-56-amd64')).toBe('kfarm/debian-12:6.1.0-56-amd64');
    const recipe = Buffer.from('FROM x');
    const pkg = { kernel: '6.1.0-56-amd64', version: '6.1.192-2', depends: [] };
    const h = kernelRecipeHash(recipe, 'sha256:t', pkg);
    expect(kernelRecipeHash(recipe, 'sha256:t', pkg)).toBe(h);
    expect(kernelRecipeHash(recipe, 'sha256:u', pkg)).not.toBe(h);
    expect(kernelRecipeHash(recipe, 'sha256:t', { ...pkg, version: '6.1.192-3' })).not.toBe(h);
    expect(kernelRecipeHash(Buffer.from('FROM y'), 'sha256:t', pkg)).not.toBe(h);
  });
});

describe('images sync plan with a kernel selection', () => {
  it('adds only the selected kernels and still keeps the others held', () => {
    const plan = planSync(
      [held('6.1.0-56-amd64', '6.1.192-2')],
      [offer('6.1.0-57-amd64', '6.1.192-3'), offer('6.1.0-56-amd64', '6.1.192-2'), offer('6.1.0-9-amd64', '6.1.27-1')],
      { ...scope, kernels: ['6.1.0-9-amd64'], prune: true },
    );
    expect(plan.add.map((k) => k.kernel)).toEqual(['6.1.0-9-amd64']);
    expect(plan.unchanged.map((i) => i.kernels[0])).toEqual(['6.1.0-56-amd64']);
    expect(plan.prune).toEqual([]);
  });
});
