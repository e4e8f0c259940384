import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverKernels, type Discovery } from '../../src/archive/discover.js';
import { resolveReleases } from '../../src/archive/releases.js';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { LABEL_RECIPE, LABEL_RECIPE_FILES, listKfarmImages } from '../../src/images/catalog.js';
import { packTar } from '../../src/executor/archive.js';
import { syncImages } from '../../src/images/image-sync.js';
import { kernelImageRef, toolchainRef } from '../../src/images/kernel-ref.js';
import { compareKernels } from '../../src/matrix/kernel-target.js';
import type { BuildReport } from '../../src/report/report.js';
import { example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';

/**
 * `kfarm images sync` against the real Debian archive and Docker: one extra debian-12 kernel
 * (the oldest generic 6.1 ABI offered, small and fetchable) is added without touching the
 * other kernels' images, a second sync has nothing to do, hello builds for it, and --prune
 * removes it once the archive no longer offers it.
 *
 * The test makes the state it needs: on a farm that holds that kernel already (one that
 * synced every kernel), it removes the kernel's image first and adds it back at the end, so
 * it passes on a fresh machine and on a used one alike. It never takes setup's default
 * kernels (KFARM_KERNELS), which the other tests build for.
 */
const runtime = new DockerRuntime();
const logger = pino({ level: 'silent' });
const heldIds = async () => new Map((await listKfarmImages(runtime)).map((i) => [i.kernels[0] ?? '', i.id]));
const debian12Images = async (kernel: string) => (await listKfarmImages(runtime)).filter((i) => i.name === 'debian-12' && i.arch === 'x86_64' && i.kernels.includes(kernel));

let env: Record<string, string>;
let discovery: Discovery;
let target: string;
let before: Map<string, string>;
/** the farm held the target before this file ran: afterAll adds it back */
let heldBefore = false;

/** Pure: the kernel this file syncs, whatever the farm holds: the oldest fetchable generic 6.1 ABI outside `reserved`. */
function pickTarget(kernels: Discovery['kernels'], reserved: ReadonlySet<string>): string | undefined {
  return kernels
    .filter((k) => k.flavour === 'amd64' && k.abi.startsWith('6.1.0-') && k.fetch.fetchable && !reserved.has(k.kernel))
    .map((k) => k.kernel)
    .sort(compareKernels)[0];
}

beforeAll(async () => {
  env = await isolatedEnv('sync');
  expect((await heldIds()).size, 'run `bash scripts/setup.sh` first').toBeGreaterThan(0);
  discovery = await discoverKernels(resolveReleases(['debian-12']), ['amd64'], { cacheDir: path.join(env.KFARM_STATE_DIR ?? '', 'archive'), logger });
  target = pickTarget(discovery.kernels, new Set((env.KFARM_KERNELS ?? '').split(','))) ?? 'none';
  expect(target, 'the archive offers no generic debian-12 6.1 kernel outside setup’s set').not.toBe('none');
  const held = await debian12Images(target);
  heldBefore = held.length > 0;
  if (heldBefore) {
    const removed = await runtime.removeImages(held.map((i) => i.ref)); // a used farm: start from "not held"
    expect(removed.ok, removed.output).toBe(true);
  }
  before = await heldIds();
  expect(before.has(target)).toBe(false);
}, 300_000);

afterAll(async () => {
  if (heldBefore) {
    // leave the farm as it was: the kernel held again (a sync, as its first holder made it)
    if ((await debian12Images(target)).length === 0) {
      const run = await kfarm(['images', 'sync', 'debian-12', '--arch', 'amd64', '--flavours', 'amd64', '--kernels', target], env);
      expect(run.exitCode, run.stderr).toBe(0);
    }
  } else if ((await runtime.inspectImage(kernelImageRef('debian-12', target)))?.labels['io.kfarm.kernels'] === target) {
    await runtime.removeImages([kernelImageRef('debian-12', target)]);
  }
}, 600_000);

describe('kfarm images sync', () => {
  it('adds one kernel with a progress line, leaving the other kernels’ image ids as they were', async () => {
    const started = Date.now();
    const run = await kfarm(['images', 'sync', 'debian-12', '--arch', 'amd64', '--flavours', 'amd64', '--kernels', target], env);
    const seconds = (Date.now() - started) / 1000;
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).toContain(`[1/1] ${target} (debian-12, headers `);
    expect(run.stdout).toMatch(/^added 1, pruned 0, /);
    const after = await heldIds();
    expect(after.has(target)).toBe(true);
    for (const [kernel, id] of before) expect(after.get(kernel), kernel).toBe(id);
    const imageSize = async (ref: string) => [...(await runtime.imageSizes([ref])).values()][0];
    const size = await imageSize(kernelImageRef('debian-12', target));
    const toolchain = await imageSize(toolchainRef('debian-12'));
    // the figures the README quotes: one kernel's cost over the shared toolchain
    console.log(`sync of ${target}: ${seconds.toFixed(1)} s; image ${((size ?? 0) / 1e6).toFixed(0)} MB, of which the toolchain ${((toolchain ?? 0) / 1e6).toFixed(0)} MB`);
    expect(size).toBeGreaterThan(toolchain ?? 0);
  }, 600_000);

  it('says there is nothing to do on a second run, in seconds', async () => {
    const started = Date.now();
    const run = await kfarm(['images', 'sync', 'debian-12', '--arch', 'amd64', '--flavours', 'amd64', '--kernels', target], env);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/nothing to do/);
    expect(run.stdout).toMatch(/^added 0, pruned 0, /);
    expect(Date.now() - started).toBeLessThan(60_000);
  }, 120_000);

  it('builds hello for the added kernel', async () => {
    const out = await tempDir('sync-hello');
    const run = await kfarm(['build', example('hello'), '--out', out, '--kernels', target], env);
    expect(run.exitCode, run.stderr).toBe(0);
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
    expect(report.kernels.map((k) => [k.kernel, k.verdict])).toEqual([[target, 'built']]);
  }, 600_000);

  it('rebuilds an image an older recipe made when it is synced, and only names it otherwise', async () => {
    const ref = kernelImageRef('debian-12', target);
    const current = await runtime.inspectImage(ref);
    expect(current?.labels[LABEL_RECIPE_FILES], 'sync labels the recipe files it built from').toMatch(/^[0-9a-f]{64}$/);
    // the image as an older kfarm recipe left it: the same kernel, other recipe labels
    await runtime.buildImage({
      context: await packTar([{ path: 'Dockerfile', type: 'file', mode: 0o644, data: Buffer.from(`FROM ${current?.id ?? ''}\n`) }]),
      tag: ref,
      buildArgs: {},
      labels: { [LABEL_RECIPE]: 'older-recipe', [LABEL_RECIPE_FILES]: 'older-recipe' },
      onLine: () => undefined,
    });
    const older = await runtime.inspectImage(ref);
    expect(older?.labels[LABEL_RECIPE_FILES]).toBe('older-recipe');
    const others = new Map([...(await heldIds())].filter(([kernel]) => kernel !== target));

    // a sync of other kernels names it and leaves it: the farm keeps building with it
    const elsewhere = [...others.keys()].find((k) => k.startsWith('6.1.0-') && k.endsWith('-amd64') && !k.includes('cloud') && !k.includes('rt')) ?? 'none';
    const kept = await kfarm(['images', 'sync', 'debian-12', '--arch', 'amd64', '--flavours', 'amd64', '--kernels', elsewhere], env);
    expect(kept.exitCode, kept.stderr).toBe(0);
    expect(kept.stderr).toContain(`${target} (debian-12) was built by an older recipe: kept as it is; \`kfarm images sync debian-12 --kernels '${target}'\` rebuilds it`);
    expect((await runtime.inspectImage(ref))?.id).toBe(older?.id);

    const run = await kfarm(['images', 'sync', 'debian-12', '--arch', 'amd64', '--flavours', 'amd64', '--kernels', target], env);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).toContain('1 to rebuild (recipe changed)');
    expect(run.stderr).toMatch(new RegExp(`\\[1/1\\] ${target.replace(/[.+]/g, '\\$&')} \\(debian-12, headers [^)]*\\): rebuilt \\(recipe changed\\) in`));
    const rebuilt = await runtime.inspectImage(ref);
    expect(rebuilt?.labels[LABEL_RECIPE_FILES]).toBe(current?.labels[LABEL_RECIPE_FILES]);
    expect(rebuilt?.id).not.toBe(older?.id);
    // the older image is gone, not left untagged; every other kernel's image is as it was
    expect(await runtime.inspectImage(older?.id ?? '')).toBeUndefined();
    const after = await heldIds();
    for (const [kernel, id] of others) expect(after.get(kernel), kernel).toBe(id);
    const again = await kfarm(['images', 'sync', 'debian-12', '--arch', 'amd64', '--flavours', 'amd64', '--kernels', target], env);
    expect(again.stderr).toMatch(/nothing to do/);
  }, 900_000);

  it('--prune removes it once the archive no longer offers it, and only it', async () => {
    // the archive of a later day, which dropped the kernel: the real index minus that kernel
    const later: Discovery = { ...discovery, kernels: discovery.kernels.filter((k) => k.kernel !== target) };
    // adds limited to a kernel already held, so the prune is all this sync does
    const held = (await listKfarmImages(runtime)).find((i) => i.name === 'debian-12' && i.arch === 'x86_64' && i.kernels[0] !== target)?.kernels[0] ?? 'none';
    // without --prune it is named, kept, and --prune suggested
    const said: string[] = [];
    const kept = await syncImages(
      runtime,
      {
        releases: resolveReleases(['debian-12']),
        arches: ['amd64'],
        prune: false,
        archiveCacheDir: path.join(env.KFARM_STATE_DIR ?? '', 'archive'),
        discovery: later,
        kernels: held,
      },
      logger,
      (line) => said.push(line),
    );
    expect(kept.pruned).toEqual([]);
    expect(said).toContain(`${target} (debian-12) is no longer offered by the archive: kept; \`kfarm images sync debian-12 --prune\` removes it`);
    expect((await heldIds()).has(target)).toBe(true);
    const lines: string[] = [];
    const result = await syncImages(
      runtime,
      {
        releases: resolveReleases(['debian-12']),
        arches: ['amd64'],
        prune: true,
        archiveCacheDir: path.join(env.KFARM_STATE_DIR ?? '', 'archive'),
        discovery: later,
        kernels: held,
      },
      logger,
      (line) => lines.push(line),
    );
    expect(result.pruned, lines.join('\n')).toEqual([target]);
    expect(result.added).toEqual([]);
    const after = await heldIds();
    expect(after.has(target)).toBe(false);
    for (const [kernel, id] of before) expect(after.get(kernel), kernel).toBe(id);
  }, 120_000);
});
