import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { resolveReleases } from '../../src/archive/releases.js';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { LABEL_ARCHIVE } from '../../src/images/archive-recipe.js';
import { kernelImageRef } from '../../src/images/kernel-ref.js';
import { checkArchive } from '../../src/service/watch/archive-check.js';
import { isolatedEnv, kfarm } from '../helpers/kfarm-cli.js';
import { startTestMirror, type TestMirror } from '../helpers/test-mirror.js';
import { execa } from 'execa';

/**
 * Issue 23's "How to test it without waiting for Debian": a mirror on 127.0.0.1 (Debian's real
 * stanzas, signed with a test key kfarm is told to trust) that gains a kernel mid-run. kfarm
 * lists what it offers, builds kernel images from it (apt in the build reads the mirror), sees
 * the kernel added and syncs only that one, and refuses the mirror once a stranger signs it.
 * Two bookworm kernels this engine holds no image of (its setup holds the newest ones); the
 * images are removed at the end, so each run builds them from the mirror again.
 */
const FIRST = '6.1.0-47-amd64';
const SECOND = '6.1.0-50-amd64';
const runtime = new DockerRuntime();

let mirror: TestMirror;
let env: Record<string, string>;
const mirrorArgs = () => ['--mirror', mirror.url, '--security-mirror', mirror.securityUrl, '--keyring', mirror.keyringFile];

/** images of these kernels a killed run built from a test mirror (on 127.0.0.1): this test's own leftovers */
async function removeTestImages(): Promise<void> {
  for (const kernel of [FIRST, SECOND]) {
    const ref = kernelImageRef('debian-12', kernel);
    const info = await runtime.inspectImage(ref);
    if (!info) continue;
    if (!(info.labels[LABEL_ARCHIVE] ?? '').startsWith('http://127.0.0.1:')) {
      throw new Error(`${ref} is held from another mirror: this test needs a kernel the engine does not hold`);
    }
    await runtime.removeImages([ref]);
  }
}

beforeAll(async () => {
  await removeTestImages();
  env = await isolatedEnv('test-mirror');
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
    expect(served.some((p) => p.endsWith(`/linux-headers-${FIRST}_6.1.170-3_amd64.deb`))).toBe(true);
    expect(served.some((p) => /\/linux-headers-6\.1\.0-47-common_.*_all\.deb$/.test(p))).toBe(true);

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

    const run = await kfarm(['images', 'sync', 'debian-12', '--arch', 'amd64', ...mirrorArgs()], env, 900_000);
    expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toMatch(/^added 1, pruned 0, unchanged 1/m);
    expect(run.stderr).toContain(SECOND);
    expect(run.stderr).not.toMatch(new RegExp(`${FIRST.replace(/\./g, '\\.')} \\(debian-12, headers`));
    expect(await runtime.inspectImage(kernelImageRef('debian-12', SECOND))).toBeDefined();
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
