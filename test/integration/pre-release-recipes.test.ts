import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { discoverKernels } from '../../src/archive/discover.js';
import { resolveReleases } from '../../src/archive/releases.js';
import { extractTar } from '../../src/executor/archive.js';
import { kernelImageRef } from '../../src/images/kernel-ref.js';
import { compareKernels } from '../../src/matrix/kernel-target.js';
import { run } from '../../src/process/run.js';
import type { BuildReport } from '../../src/report/report.js';
import { example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';
import { moduleEntry, plainModule } from '../helpers/module-files.js';

/**
 * The kernels to come (issue 25 §2) end to end against the real archive and Docker: the newest
 * fetchable generic kernel of debian-unstable (sid) on amd64 and of debian-experimental on arm64
 * (cross-built; experimental's kernels are named without an ABI number, 7.3-arm64), chosen now
 * from `kfarm kernels --available --json`, synced through the CLI (their toolchains start from a
 * sid root, bootstrapped when no registry answers) and examples/hello built for each. The
 * module's vermagic names the kernel, its ELF machine is the kernel's arch, and its .comment
 * names only the gcc major the headers depend on (gcc-16-for-host on 2026-12-08). The driver
 * follows dkms 3.2.2 in these images (VERSION_CODENAME forky, no VERSION_ID): make.log says so.
 */
const logger = pino({ level: 'silent' });

interface Available {
  kernel: string;
  flavour: string;
  fetchable: boolean;
  stage: string;
}

let env: Record<string, string>;

beforeAll(async () => {
  env = await isolatedEnv('pre-release-recipes');
}, 60_000);

describe.each([
  { release: 'debian-unstable', arch: 'amd64', uname: 'x86_64', machine: 'Advanced Micro Devices X86-64' },
  { release: 'debian-experimental', arch: 'arm64', uname: 'aarch64', machine: 'AArch64' },
])('$release $arch', ({ release, arch, uname, machine }) => {
  let kernel = 'none';
  let gcc: number | undefined;

  beforeAll(async () => {
    const listed = await kfarm(['kernels', '--available', release, '--arch', arch, '--json'], env);
    expect(listed.exitCode, listed.stderr).toBe(0);
    const available = JSON.parse(listed.stdout) as Available[];
    expect(available.length, `${release} ${arch} offers no kernel`).toBeGreaterThan(0);
    expect(new Set(available.map((k) => k.stage))).toEqual(new Set(['pre-release']));
    const generic = available
      .filter((k) => k.flavour === arch && k.fetchable)
      .map((k) => k.kernel)
      .sort(compareKernels);
    kernel = generic.at(-1) ?? 'none';
    expect(kernel, `no fetchable generic ${arch} kernel in ${release}`).not.toBe('none');
    const discovery = await discoverKernels(resolveReleases([release]), [arch as 'amd64' | 'arm64'], { cacheDir: path.join(env.KFARM_STATE_DIR ?? '', 'archive'), logger });
    gcc = discovery.kernels.find((k) => k.kernel === kernel)?.compiler?.gcc;
    expect(gcc, `the headers of ${kernel} name no gcc`).toBeGreaterThanOrEqual(16);
    console.log(`[pre-release] ${release} ${arch}: ${kernel} (gcc-${gcc})`);
  }, 300_000);

  it('syncs the newest generic kernel image (a no-op when held)', async () => {
    const started = Date.now();
    const synced = await kfarm(['images', 'sync', release, '--arch', arch, '--flavours', arch, '--kernels', kernel], env, 2_400_000);
    console.log(`[pre-release] sync of ${kernel} in ${Math.round((Date.now() - started) / 1000)} s`);
    expect(synced.exitCode, `${synced.stdout}\n${synced.stderr}`).toBe(0);
    expect(synced.stdout).toMatch(/failed 0/);
  }, 2_400_000);

  it('kfarm kernels marks it pre-release', async () => {
    const listed = await kfarm(['kernels'], env);
    expect(listed.exitCode, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^${kernel.replace(/[.+]/g, '\\$&')}\\s+${uname}\\s+${release}\\s+pre-release$`, 'm'));
  }, 120_000);

  it('builds hello: vermagic names the kernel, the ELF is the arch, .comment names the headers’ gcc; make.log is dkms 3.2.2’s', async () => {
    const out = await tempDir(`${release}-hello`);
    const started = Date.now();
    const built = await kfarm(['build', example('hello'), '--out', out, '--kernels', kernel], env);
    console.log(`[pre-release] build of hello for ${kernel} in ${Math.round((Date.now() - started) / 1000)} s`);
    expect(built.exitCode, built.stderr).toBe(0);
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
    expect(report.kernels.map((k) => [k.kernel, k.image, k.arch, k.verdict])).toEqual([[kernel, release, uname, 'built']]);
    const tarball = await readFile(path.join(out, report.kernels[0]?.tarball?.path ?? 'missing'));
    const entries = await extractTar(gunzipSync(tarball), { maxBytes: 1 << 26, maxEntries: 100, allowSymlinks: false }, 'tarball');
    const ko = moduleEntry(entries, kernel, uname, 'hello');
    expect(ko?.data, `hello.ko for ${kernel}`).toBeDefined();
    const file = path.join(out, 'hello.ko');
    await writeFile(file, await plainModule(ko?.data ?? Buffer.alloc(0), ko?.path ?? '.ko'));
    const vermagic = (await run('modinfo', ['-F', 'vermagic', file])).stdout;
    expect(vermagic.split(' ')[0]).toBe(kernel);
    expect((await run('readelf', ['-h', file])).stdout).toMatch(new RegExp(`Machine:\\s+${machine}`));
    const comment = (await run('readelf', ['-p', '.comment', file])).stdout;
    const majors = [...comment.matchAll(/GCC: \([^)]*\) (\d+)\./g)].map((m) => Number(m[1]));
    expect(majors.length, comment).toBeGreaterThan(0);
    expect(new Set(majors)).toEqual(new Set([gcc]));
    const makeLog = entries.find((e) => e.path.endsWith(`/${kernel}/${uname}/log/make.log`));
    expect(makeLog?.data?.toString('utf8').split('\n')[0], 'make.log').toMatch(/^DKMS \(dkms-3\.2\.2\) make\.log for hello\//);
  }, 600_000);

  it('holds no kernel image, and apt in it is consistent', async () => {
    const probed = await run(
      'docker',
      ['run', '--rm', '--network', 'none', kernelImageRef(release, kernel), 'sh', '-ec', 'apt-get check >/dev/null; grep -h "^VERSION" /etc/os-release'],
      {
        allowFailure: true,
      },
    );
    expect(probed.exitCode, `apt-get check in ${kernelImageRef(release, kernel)}: ${probed.stderr}`).toBe(0);
    // a sid root: no VERSION_ID, VERSION_CODENAME forky (the driver's row for testing and unstable)
    expect(probed.stdout).not.toMatch(/^VERSION_ID=/m);
    expect(probed.stdout).toMatch(/^VERSION_CODENAME=forky$/m);
  }, 120_000);
});
