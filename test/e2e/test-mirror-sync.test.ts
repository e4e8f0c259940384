import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { resolveReleases } from '../../src/archive/releases.js';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { LABEL_ARCHIVE } from '../../src/images/archive-recipe.js';
import { listKfarmImages } from '../../src/images/catalog.js';
import { kernelImageRef } from '../../src/images/kernel-ref.js';
import { compareKernels } from '../../src/matrix/kernel-target.js';
import { checkArchive } from '../../src/service/watch/archive-check.js';
import { isolatedEnv, kfarm } from '../helpers/kfarm-cli.js';
import { debianKernels, startTestMirror, type TestMirror } from '../helpers/test-mirror.js';
import { execa } from 'execa';

/**
 * Issue 23's "How to test it without waiting for Debian": a mirror on 127.0.0.1 (Debian's real
 * stanzas, signed with a test key kfarm is told to trust) that gains a kernel mid-run. kfarm
 * lists what it offers, builds kernel images from it (apt in the build reads the mirror), sees
 * the kernel added and syncs only that one, and refuses the mirror once a stranger signs it.
 * Two generic 6.1 kernels Debian offers and this engine holds no image of, neither setup's
 * nor the oldest (images-sync.test.ts's): the first from bookworm (the mirror's /debian), the
 * second from bookworm-security when it has one (its /debian-security). Their images are
 * removed at the end, so each run builds them from the mirror again.
 */
const runtime = new DockerRuntime();

let FIRST: string;
let SECOND: string;
/** the first kernel's headers .deb, as the index names it */
let firstDeb: string;
let mirror: TestMirror;
let env: Record<string, string>;
const mirrorArgs = () => ['--mirror', mirror.url, '--security-mirror', mirror.securityUrl, '--keyring', mirror.keyringFile];

/** debian-12 images built from a mirror on 127.0.0.1: a test mirror's, this test's own (or a killed run's) */
async function removeTestImages(): Promise<void> {
  for (const image of await runtime.listImages(LABEL_ARCHIVE)) {
    if (!(image.labels[LABEL_ARCHIVE] ?? '').startsWith('http://127.0.0.1:')) continue;
    const tags = image.tags.filter((t) => t.startsWith('kfarm/debian-12:'));
    if (tags.length > 0) await runtime.removeImages(tags);
  }
}

beforeAll(async () => {
  await removeTestImages();
  env = await isolatedEnv('test-mirror');
  const held = new Set((await listKfarmImages(runtime)).filter((i) => i.name === 'debian-12').flatMap((i) => i.kernels));
  const generic = (await debianKernels({ release: 'debian-12', arch: 'amd64' })).filter((k) => k.flavour === 'amd64' && k.abi.startsWith('6.1.0-'));
  const oldest = generic.map((k) => k.kernel).sort(compareKernels)[0];
  const reserved = new Set([...(env.KFARM_KERNELS ?? '').split(','), oldest]);
  const free = generic.filter((k) => !held.has(k.kernel) && !reserved.has(k.kernel)).sort((a, b) => compareKernels(b.kernel, a.kernel));
  const first = free.find((k) => k.suite === 'bookworm');
  const second = free.find((k) => k.suite === 'bookworm-security') ?? free.find((k) => k.kernel !== first?.kernel);
  if (!first || !second) throw new Error(`Debian offers no two generic 6.1 kernels this engine lacks (one in bookworm): ${free.map((k) => k.kernel).join(' ')}`);
  FIRST = first.kernel;
  SECOND = second.kernel;
  firstDeb = first.filename.split('/').pop() ?? '';
  mirror = await startTestMirror({ release: 'debian-12', arch: 'amd64', kernels: [FIRST] });
}, 600_000);
afterAll(async () => {
  await removeTestImages();
  await mirror?.close();
});

describe('a Debian mirror on this machine', () => {
  it('kernels --available lists exactly the kernel the mirror offers', async () => {
    const run = await kfarm(['kernels', '--available', 'debian-12', '--arch', 'amd64', ...mirrorArgs(), '--json'], env);
    expect(run.exitCode, run.stderr).toBe(0);
    const rows = JSON.parse(run.stdout) as Array<{ kernel: string; fetchable: boolean; held: boolean }>;
    expect(rows.map((r) => [r.kernel, r.fetchable, r.held])).toEqual([[FIRST, true, false]]);
    // the suites the mirror lacks were warned about, not failed for
    expect(run.stderr).toMatch(/does not serve bookworm-updates/);
  });

  it('images sync builds the kernel image from the mirror', async () => {
    mirror.requests.length = 0;
    const started = Date.now();
    const run = await kfarm(['images', 'sync', 'debian-12', '--arch', 'amd64', ...mirrorArgs(), '--kernels', FIRST], env, 900_000);
    const seconds = Math.round((Date.now() - started) / 1000);
    expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toMatch(/^added 1, pruned 0/m);
    console.log(`synced ${FIRST} from the test mirror in ${seconds} s`);
    // apt in the build fetched the headers and their -common from the mirror, not from Debian's
    const served = mirror.requests.filter((r) => r.method === 'GET' && r.status === 200).map((r) => r.path);
    expect(served).toContain('/debian/dists/bookworm/InRelease');
    expect(served.some((p) => p.endsWith(`/${firstDeb}`))).toBe(true);
    expect(served.some((p) => p.includes(`/linux-headers-${FIRST.replace(/-amd64$/, '')}-common_`))).toBe(true);

    const ref = kernelImageRef('debian-12', FIRST);
    const info = await runtime.inspectImage(ref);
    expect(info?.labels[LABEL_ARCHIVE]).toBe(mirror.url);
    // the headers are in, and the image's apt reads Debian's mirrors again (the mirror's sources and key are gone)
    const look = await execa('docker', [
      'run',
      '--rm',
      ref,
      'sh',
      '-c',
      `test -d /lib/modules/${FIRST}/build/include && grep -h '^URIs' /etc/apt/sources.list.d/*.sources && ls /etc/kfarm-archive 2>&1 || true`,
    ]);
    expect(look.stdout).toContain('URIs: http://deb.debian.org/debian');
    expect(look.stdout).not.toContain('127.0.0.1');
    expect(look.stdout).toMatch(/No such file/);
  }, 900_000);

  it('sees a kernel added mid-run and syncs only that one', async () => {
    const source = { mirrors: { debian: mirror.url, 'debian-security': mirror.securityUrl }, keyring: mirror.keyringFile };
    const stateDir = env.KFARM_STATE_DIR as string;
    const releases = resolveReleases(['debian-12']);
    const logger = pino({ level: 'silent' });
    const before = await checkArchive(source, releases, ['amd64'], stateDir, logger);
    expect(before.kernels.map((k) => k.kernel)).toEqual([FIRST]);
    await mirror.addKernel(SECOND);
    const after = await checkArchive(source, releases, ['amd64'], stateDir, logger);
    expect(after.changed).toBe(true);
    expect(after.added.map((k) => k.kernel)).toEqual([SECOND]);

    mirror.requests.length = 0;
    const run = await kfarm(['images', 'sync', 'debian-12', '--arch', 'amd64', ...mirrorArgs()], env, 900_000);
    expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toMatch(/^added 1, pruned 0, unchanged 1/m);
    expect(run.stderr).toContain(SECOND);
    expect(run.stderr).not.toMatch(new RegExp(`${FIRST.replace(/\./g, '\\.')} \\(debian-12, headers`));
    expect(await runtime.inspectImage(kernelImageRef('debian-12', SECOND))).toBeDefined();
    const debs = mirror.requests.filter((r) => r.method === 'GET' && r.path.endsWith('.deb')).map((r) => r.path);
    expect(debs.some((p) => p.includes(`/linux-headers-${SECOND}_`))).toBe(true);
    expect(debs.some((p) => p.includes(`/linux-headers-${FIRST}_`))).toBe(false);
  }, 900_000);

  it('refuses the mirror once its indexes are signed by a key kfarm was not told to trust', async () => {
    await mirror.signWith('stranger');
    const run = await kfarm(['kernels', '--available', 'debian-12', '--arch', 'amd64', ...mirrorArgs()], env);
    expect(run.exitCode).toBe(3);
    expect(run.stderr).toMatch(/has no valid signature from a key in/);
    const sync = await kfarm(['images', 'sync', 'debian-12', '--arch', 'amd64', ...mirrorArgs()], env);
    expect(sync.exitCode).toBe(3);
  });
});
