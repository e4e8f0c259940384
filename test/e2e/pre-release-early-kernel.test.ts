import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { discoverKernels } from '../../src/archive/discover.js';
import { resolveReleases } from '../../src/archive/releases.js';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { LABEL_ARCHIVE } from '../../src/images/archive-recipe.js';
import { kernelImageRef } from '../../src/images/kernel-ref.js';
import { compareKernels } from '../../src/matrix/kernel-target.js';
import { isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';
import { startTestMirror, type TestMirror } from '../helpers/test-mirror.js';

/**
 * Bad input of issue 25 §2: a pre-release kernel whose headers depend on a package its suite
 * does not have yet (in sid a kernel's headers often arrive before their linux-kbuild or their
 * gcc-N-for-host). A mirror on 127.0.0.1 with Debian's real sid stanzas offers the newest
 * cloud-amd64 kernel of sid but withholds its linux-kbuild: `kfarm images sync debian-unstable`
 * names the kernel as waiting for that package, tags no image for it and exits 0; once the
 * mirror serves the package, the next sync adds it. (cloud, so that the generic kernel of
 * test/integration/pre-release-recipes.test.ts, held from Debian's mirror, is not this one.)
 */
const runtime = new DockerRuntime();
let mirror: TestMirror;
let env: Record<string, string>;
let kernel = '';
let kbuild = '';
const mirrorArgs = () => ['--mirror', mirror.url, '--security-mirror', mirror.securityUrl, '--keyring', mirror.keyringFile];

/** debian-unstable images built from a mirror on 127.0.0.1: this test's own (or a killed run's) */
async function removeTestImages(): Promise<void> {
  for (const image of await runtime.listImages(LABEL_ARCHIVE)) {
    if (!(image.labels[LABEL_ARCHIVE] ?? '').startsWith('http://127.0.0.1:')) continue;
    const tags = image.tags.filter((t) => t.startsWith('kfarm/debian-unstable:'));
    if (tags.length > 0) await runtime.removeImages(tags);
  }
}

beforeAll(async () => {
  await removeTestImages();
  env = await isolatedEnv('early-kernel');
  const discovery = await discoverKernels(resolveReleases(['debian-unstable']), ['amd64'], {
    cacheDir: await tempDir('early-archive'),
    logger: pino({ level: 'silent' }),
    checkFetch: false,
  });
  const cloud = discovery.kernels.filter((k) => k.flavour === 'cloud-amd64').sort((a, b) => compareKernels(b.kernel, a.kernel))[0];
  if (!cloud?.kbuild) throw new Error(`sid offers no cloud-amd64 kernel with a linux-kbuild dependency: ${discovery.kernels.map((k) => k.kernel).join(' ')}`);
  kernel = cloud.kernel;
  kbuild = cloud.kbuild;
  if (await runtime.inspectImage(kernelImageRef('debian-unstable', kernel))) throw new Error(`${kernel} is held from another mirror: remove kfarm/debian-unstable:${kernel} first`);
  mirror = await startTestMirror({ release: 'debian-unstable', arch: 'amd64', kernels: [kernel] });
  await mirror.withholdPackage(kbuild);
}, 900_000);
afterAll(async () => {
  await removeTestImages();
  await mirror?.close();
});

describe('a pre-release kernel whose headers depend on a package not in the suite yet', () => {
  it('is named as waiting for that package, not added, and the sync exits 0', async () => {
    const run = await kfarm(['images', 'sync', 'debian-unstable', '--arch', 'amd64', ...mirrorArgs(), '--kernels', kernel], env, 2_400_000);
    const all = `${run.stdout}\n${run.stderr}`;
    expect(run.exitCode, all).toBe(0);
    expect(all).toContain(`${kernel} (debian-unstable): waiting: its headers depend on ${kbuild}, not in sid yet; not added, the next sync tries again`);
    expect(run.stdout).toMatch(/^added 0, pruned 0, unchanged 0, not fetchable 0, failed 0, waiting 1 /m);
    expect(await runtime.inspectImage(kernelImageRef('debian-unstable', kernel))).toBeUndefined();
  }, 2_400_000);

  it('the next sync, once the suite has the package, adds it', async () => {
    await mirror.addKernel(kernel);
    const run = await kfarm(['images', 'sync', 'debian-unstable', '--arch', 'amd64', ...mirrorArgs(), '--kernels', kernel], env, 1_200_000);
    expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toMatch(/^added 1, pruned 0, unchanged 0, not fetchable 0, failed 0 /m);
    expect((await runtime.inspectImage(kernelImageRef('debian-unstable', kernel)))?.labels['io.kfarm.kernels']).toBe(kernel);
  }, 1_200_000);
});
