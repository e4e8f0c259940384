import { describe, expect, it } from 'vitest';
import {
  jobPayload,
  orderSources,
  planBuild,
  signingImages,
  waveJobs,
  wantsHistory,
  type BuildPlan,
  type BuiltModule,
  type SourceFacts,
} from '../../src/coordinator/build-plan.js';
import { buildOptions } from '../../src/config/build-options.js';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import type { KernelRecord } from '../../src/job/job-payload.js';
import type { KernelTarget } from '../../src/matrix/kernel-target.js';

// The decisions of `kfarm build`, made from plain data: no Docker, Redis or file here.

const source = (name: string, conf = `PACKAGE_NAME=${name}\nPACKAGE_VERSION=1\n`, compileUnits = 1): SourceFacts => ({
  dir: `/src/${name}`,
  sha256: name.padEnd(64, '0'),
  dkmsConf: Buffer.from(conf),
  compileUnits,
});
const target = (kernel: string, image = 'debian-12', arch = 'x86_64'): KernelTarget => ({ kernel, arch, image, imageRef: `kfarm/${image}:latest`, imageId: `sha256:${image}` });
const held = [target('6.1.0-28-amd64'), target('6.1.0-30-amd64'), target('6.12.9-amd64', 'debian-13')];
const options = buildOptions({});

function plan(sources: SourceFacts[], selector = 'all', extra: { lastBuilt?: Array<Array<{ kernel: string; arch: string }>>; dirs?: string[] } = {}) {
  const order = orderSources(extra.dirs ?? sources.map((s) => s.dir.replace('/src/', '')), sources);
  return planBuild({ order, selector, held, ...(extra.lastBuilt ? { lastBuilt: extra.lastBuilt } : {}), options, driverSha256: 'd'.repeat(64), stamp: 'stamp' });
}
function mustPlan(p: ReturnType<typeof plan>): BuildPlan<SourceFacts> {
  if ('nothingNew' in p) throw new Error('expected a plan');
  return p;
}
const thrown = (f: () => unknown): unknown => {
  try {
    f();
  } catch (err) {
    return err;
  }
  throw new Error('did not throw');
};

describe('orderSources: the command line refused or ordered before any catalog is listed', () => {
  it('refuses the same source given twice, by path or by content', () => {
    const byContent = thrown(() => orderSources(['a', 'copy-of-a'], [source('a'), { ...source('a'), dir: '/src/copy' }]));
    expect(isKfarmError(byContent, 'BAD_OPTION')).toBe(true);
    expect((byContent as Error).message).toBe('copy-of-a and a are the same module source: give each source once');
    const byPath = thrown(() => orderSources(['a', './a'], [source('a'), { ...source('a'), sha256: 'f'.repeat(64) }]));
    expect((byPath as Error).message).toBe('./a and a are the same module source: give each source once');
  });
  it('puts a BUILD_DEPENDS dependency in a wave before its dependent, whatever the command-line order', () => {
    const order = orderSources(['user', 'base'], [source('user', 'PACKAGE_NAME=user\nBUILD_DEPENDS[0]=base\n'), source('base')]);
    expect(order.waves).toEqual([[1], [0]]);
    expect(order.depends).toEqual([[1], []]);
  });
});

describe('planBuild: which kernels each source builds for', () => {
  it('selects the kernels of the selector; one source is labelled by its kernels alone', () => {
    const p = mustPlan(plan([source('hello')], 'debian-12:*'));
    expect(p.sources.map((s) => s.targets.map((t) => t.kernel))).toEqual([['6.1.0-28-amd64', '6.1.0-30-amd64']]);
    expect(p.sources[0]?.label).toBeUndefined();
    expect(p.several).toBe(false);
    expect(p.buildId).toBe('hello-stamp');
  });
  it('names each source when there are several, and the build id after all of them', () => {
    const p = mustPlan(plan([source('a'), source('b')]));
    expect(p.sources.map((s) => s.label)).toEqual(['a', 'b']);
    expect(p.buildId).toBe('a+b-stamp');
    expect(p.waves.map((w) => w.map((s) => s.dir))).toEqual([['a', 'b']]);
  });
  it('a selector that matches nothing is an error, not an empty build', () => {
    const err = thrown(() => plan([source('a')], 'no-such-kernel'));
    expect(isKfarmError(err, 'KERNEL_SELECTOR_EMPTY')).toBe(true);
  });
  it('`new` leaves out a source whose history covers every held kernel, and builds the others on what is new to them', () => {
    expect(wantsHistory('new')).toBe(true);
    expect(wantsHistory('all')).toBe(false);
    const all = held.map((t) => ({ kernel: t.kernel, arch: t.arch }));
    const p = mustPlan(plan([source('old'), source('fresh')], 'new', { lastBuilt: [all, all.slice(1)] }));
    expect(p.sources.map((s) => [s.dir, s.index, s.targets.map((t) => t.kernel)])).toEqual([['fresh', 1, ['6.1.0-28-amd64']]]);
    // still "several": two sources were given, so its logs and label name it
    expect(p.sources[0]?.label).toBe('fresh');
    expect(p.waves).toHaveLength(1);
  });
  it('`new` with nothing new for any source is nothing to do, with the count of held kernels', () => {
    const all = held.map((t) => ({ kernel: t.kernel, arch: t.arch }));
    expect(plan([source('a')], 'new', { lastBuilt: [all] })).toEqual({ nothingNew: true, held: 3 });
  });
  it('drops the waves left empty by a source with nothing new', () => {
    const all = held.map((t) => ({ kernel: t.kernel, arch: t.arch }));
    const sources = [source('user', 'PACKAGE_NAME=user\nBUILD_DEPENDS[0]=base\n'), source('base')];
    const p = mustPlan(plan(sources, 'new', { lastBuilt: [[], all] }));
    expect(p.waves.map((w) => w.map((s) => s.dir))).toEqual([['user']]);
  });
});

const built = (kernel: string, image: string, verdict: KernelRecord['verdict'], symvers?: { sha256: string; size: number }): { record: KernelRecord } => ({
  record: {
    schemaVersion: 1,
    kernel,
    arch: 'x86_64',
    image,
    verdict,
    modules: [],
    log: { sha256: 'l', size: 1 },
    logTruncated: false,
    durationMs: 1,
    worker: 'w',
    finishedAt: '2026-11-26T00:00:00Z',
    cacheable: true,
    ...(symvers ? { symvers } : {}),
  },
});

describe("waveJobs: each wave's payloads", () => {
  it('one payload per (source, kernel), with its label and priority', () => {
    const p = mustPlan(plan([source('small', undefined, 1), source('big', undefined, 50)], 'debian-13:*'));
    const jobs = waveJobs(p, p.waves[0] ?? [], new Map());
    expect(jobs.map((j) => j.label)).toEqual(['small: 6.12.9-amd64', 'big: 6.12.9-amd64']);
    expect(jobs[0]?.payload).toEqual(jobPayload(source('small'), target('6.12.9-amd64', 'debian-13'), options, 'small+big-stamp', 'd'.repeat(64)));
    expect(jobs[0]?.payload.driverSha256).toBe('d'.repeat(64));
    // more to compile, sooner (a lower BullMQ priority)
    expect(jobs[1]!.priority).toBeLessThan(jobs[0]!.priority);
  });
  it('hands a dependent its dependency on each kernel where the dependency built, with its Module.symvers', () => {
    const p = mustPlan(plan([source('user', 'PACKAGE_NAME=user\nBUILD_DEPENDS[0]=base\n'), source('base')], 'debian-12:*'));
    const [first, second] = p.waves;
    expect(first?.map((s) => s.dir)).toEqual(['base']);
    expect(waveJobs(p, first ?? [], new Map()).every((j) => j.payload.dependsOn === undefined)).toBe(true);
    const symvers = { sha256: 'e'.repeat(64), size: 10 };
    const base: BuiltModule = {
      identity: { name: 'base', version: '2.0' },
      results: [built('6.1.0-30-amd64', 'other-image', 'built'), built('6.1.0-28-amd64', 'debian-12', 'built', symvers), built('6.1.0-30-amd64', 'debian-12', 'failed')],
    };
    const jobs = waveJobs(p, second ?? [], new Map([[1, base]]));
    expect(jobs.map((j) => [j.payload.kernel, j.payload.dependsOn])).toEqual([
      ['6.1.0-28-amd64', [{ name: 'base', version: '2.0', symvers }]],
      // failed here (the same kernel built in another image does not count): the driver judges, as the release's dkms does
      ['6.1.0-30-amd64', undefined],
    ]);
  });
});

describe('signingImages: what --sign-key sets signers up for', () => {
  it('keeps only the planned kernels of each image, and no image without one', () => {
    const p = mustPlan(plan([source('a')], '6.1.0-28-amd64'));
    const images = [
      { name: 'debian-12', kernels: ['6.1.0-28-amd64', '6.1.0-30-amd64'] },
      { name: 'debian-13', kernels: ['6.12.9-amd64'] },
    ];
    expect(signingImages(images, p)).toEqual([{ name: 'debian-12', kernels: ['6.1.0-28-amd64'] }]);
  });
});
