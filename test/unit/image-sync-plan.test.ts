import { describe, expect, it } from 'vitest';
import type { DiscoveredKernel } from '../../src/archive/discover.js';
import { parseDepends } from '../../src/archive/headers-packages.js';
import type { KfarmImage } from '../../src/images/catalog.js';
import { aptDependencies, kernelRecipeHash } from '../../src/images/kernel-recipe.js';
import { kernelImageRef, kernelTag } from '../../src/images/kernel-ref.js';
import { describePlan, planSync } from '../../src/images/sync-plan.js';
import { errorChainText, saysNoSpace, watchBuildLines } from '../../src/images/sync-faults.js';
import { syncStatusText } from '../../src/cli/sync-progress.js';
import { pino } from 'pino';

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
    const plan = planSync(
      [held('6.1.0-56-amd64', '6.1.192-2')],
      [offer('6.1.0-57-amd64', '6.1.192-3'), offer('6.1.0-56-amd64', '6.1.192-2'), offer('6.1.0-9-amd64', '6.1.27-1')],
      scope,
    );
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
    expect(plan).toEqual({ add: [], prune: [], gone: [], unchanged: [], unfetchable: [], outdated: [] });
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
    const plan = planSync([held('6.1.0-56-amd64', '6.1.192-2')], [offer('6.1.0-57-amd64', '6.1.192-3'), offer('6.1.0-56-amd64', '6.1.192-2'), offer('6.1.0-9-amd64', '6.1.27-1')], {
      ...scope,
      kernels: ['6.1.0-9-amd64'],
      prune: true,
    });
    expect(plan.add.map((k) => k.kernel)).toEqual(['6.1.0-9-amd64']);
    expect(plan.unchanged.map((i) => i.kernels[0])).toEqual(['6.1.0-56-amd64']);
    expect(plan.prune).toEqual([]);
  });
});

describe('images sync faults', () => {
  it('tells a full disk from other failures, in apt, dpkg and engine words', () => {
    expect(saysNoSpace('E: Write error - write (28: No space left on device)')).toBe(true);
    expect(saysNoSpace("unable to create '/var/lib/dpkg/updates/tmp.i': No space left on device")).toBe(true);
    expect(saysNoSpace('failed to register layer: ENOSPC')).toBe(true);
    expect(saysNoSpace('E: Unable to locate package linux-headers-6.1.0-99-amd64')).toBe(false);
    expect(saysNoSpace('The command returned a non-zero code: 100')).toBe(false);
  });

  it('reads the causes of an error too', () => {
    const err = new Error('the image for k did not build', { cause: new Error('docker build failed: write /x: no space left on device') });
    expect(errorChainText(err)).toBe('the image for k did not build | docker build failed: write /x: no space left on device');
    expect(saysNoSpace(errorChainText(err))).toBe(true);
  });

  it('reads a cause that is a plain object, not an Error, by its fields', () => {
    const err = new Error('the image for k did not build', { cause: { message: 'write /x: no space left on device', statusCode: 500 } });
    expect(saysNoSpace(errorChainText(err))).toBe(true);
    expect(errorChainText(new Error('a', { cause: 'b' }))).toBe('a | b');
  });

  it('shows each build line, keyed by kernel or image, and still logs it', () => {
    const logged: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => logged.push(line) });
    const seen: Array<[string, string]> = [];
    const watched = watchBuildLines(logger, (key, line) => seen.push([key, line]));
    watched.debug({ kernel: '6.1.0-56-amd64' }, 'Get:1 http://deb.debian.org ...');
    watched.debug({ image: 'kfarm/debian-12-toolchain:latest' }, 'Step 1/4');
    watched.info({ kernel: 'x' }, 'not a build line');
    expect(seen).toEqual([
      ['6.1.0-56-amd64', 'Get:1 http://deb.debian.org ...'],
      ['kfarm/debian-12-toolchain:latest', 'Step 1/4'],
    ]);
    expect(logged).toHaveLength(3);
    expect(logged[0]).toContain('"kernel":"6.1.0-56-amd64"');
  });

  it('the status line: counts, elapsed and what is left at the pace so far', () => {
    expect(syncStatusText({ added: 0, running: 2, queued: 34, failed: 0, total: 36, elapsedMs: 4000 })).toBe('sync: 0 added, 2 running, 34 queued, 0 failed of 36; 4.0 s');
    // 4 ended in 40 s: 32 left take about 320 s
    expect(syncStatusText({ added: 3, running: 2, queued: 30, failed: 1, total: 36, elapsedMs: 40_000 })).toBe(
      'sync: 3 added, 2 running, 30 queued, 1 failed of 36; 40.0 s, about 5 min 20 s left',
    );
  });
});

describe('images sync plan when the recipe changed', () => {
  const recipes = new Map([['debian-12/amd64', 'recipe-now']]);
  const built = (kernel: string, recipeFiles?: string): KfarmImage => ({ ...held(kernel, '6.1.192-2'), ...(recipeFiles ? { recipeFiles } : {}) });

  it('rebuilds a held image whose recipe files differ or are not said, keeps the current one', () => {
    const plan = planSync(
      [built('6.1.0-55-amd64', 'recipe-now'), built('6.1.0-56-amd64', 'recipe-before'), built('6.1.0-57-amd64')],
      [offer('6.1.0-55-amd64', '6.1.192-2'), offer('6.1.0-56-amd64', '6.1.192-2'), offer('6.1.0-57-amd64', '6.1.192-2')],
      { ...scope, recipes },
    );
    expect(plan.unchanged.map((i) => i.kernels[0])).toEqual(['6.1.0-55-amd64']);
    expect(plan.add.map((k) => [k.kernel, k.recipeChanged, k.replaces?.id])).toEqual([
      ['6.1.0-56-amd64', true, 'sha256:6.1.0-56-amd64'],
      ['6.1.0-57-amd64', true, 'sha256:6.1.0-57-amd64'],
    ]);
    expect(describePlan(plan)).toBe('0 to add, 2 to rebuild (recipe changed), 1 unchanged');
  });

  it('keeps an outdated image outside the kernel selection or not fetchable now, and says so', () => {
    const plan = planSync(
      [built('6.1.0-56-amd64', 'recipe-before'), built('6.1.0-57-amd64', 'recipe-before'), built('6.1.0-58-amd64', 'recipe-before')],
      [offer('6.1.0-56-amd64', '6.1.192-2'), offer('6.1.0-57-amd64', '6.1.192-2'), offer('6.1.0-58-amd64', '6.1.192-2', { fetch: { fetchable: false, reason: 'HTTP 404' } })],
      { ...scope, recipes, kernels: ['6.1.0-57-amd64', '6.1.0-58-amd64'] },
    );
    expect(plan.add.map((k) => k.kernel)).toEqual(['6.1.0-57-amd64']);
    expect(plan.outdated.map((i) => i.kernels[0])).toEqual(['6.1.0-56-amd64', '6.1.0-58-amd64']);
    expect(describePlan(plan)).toBe('0 to add, 1 to rebuild (recipe changed), 0 unchanged, 2 from an older recipe (kept)');
  });

  it('judges nothing without recipe hashes (the plan of a caller that has none)', () => {
    const plan = planSync([built('6.1.0-56-amd64', 'recipe-before')], [offer('6.1.0-56-amd64', '6.1.192-2')], scope);
    expect(plan.unchanged).toHaveLength(1);
    expect(describePlan(plan)).toBe('nothing to do: 1 kernel(s) held and current');
  });
});
