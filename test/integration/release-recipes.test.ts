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
 * The debian-11 (bullseye, gcc-10) and debian-13 (trixie, gcc-14) recipes end to end against the
 * real archive and Docker: the newest fetchable generic amd64 kernel of each release, chosen now
 * from `kfarm kernels --available --json`, is synced (a no-op once its image is held) and
 * examples/hello is built for it. The module must name that kernel in its vermagic and be compiled
 * by the gcc major the kernel's headers depend on (linux-compiler-gcc-10-x86 on bullseye,
 * gcc-14-for-host on trixie-backports 7.x), the compiler the kernel itself was built with.
 * The kernel's image holds its headers but no kernel image, and apt in it is consistent (a
 * dependency forced past with dpkg would have `apt-get install` anything pull a kernel in).
 */
const logger = pino({ level: 'silent' });

interface Available {
  kernel: string;
  flavour: string;
  fetchable: boolean;
}

let env: Record<string, string>;

beforeAll(async () => {
  env = await isolatedEnv('release-recipes');
}, 60_000);

describe.each(['debian-11', 'debian-13'])('%s recipe', (release) => {
  let kernel = 'none';
  let gcc: number | undefined;

  beforeAll(async () => {
    const listed = await kfarm(['kernels', '--available', release, '--arch', 'amd64', '--json'], env);
    expect(listed.exitCode, listed.stderr).toBe(0);
    const available = JSON.parse(listed.stdout) as Available[];
    const generic = available
      .filter((k) => k.flavour === 'amd64' && k.fetchable)
      .map((k) => k.kernel)
      .sort(compareKernels);
    kernel = generic.at(-1) ?? 'none';
    expect(kernel, `no fetchable generic amd64 kernel in ${release}`).not.toBe('none');
    // the compiler dependency of that kernel's headers, from the same (cached) archive indexes
    const discovery = await discoverKernels(resolveReleases([release]), ['amd64'], { cacheDir: path.join(env.KFARM_STATE_DIR ?? '', 'archive'), logger });
    gcc = discovery.kernels.find((k) => k.kernel === kernel)?.compiler?.gcc;
    expect(gcc, `the headers of ${kernel} name no gcc`).toBeGreaterThan(0);
  }, 300_000);

  it('syncs the newest generic kernel image (a no-op when held)', async () => {
    const synced = await kfarm(['images', 'sync', release, '--arch', 'amd64', '--flavours', 'amd64', '--kernels', kernel], env, 1_200_000);
    expect(synced.exitCode, synced.stderr).toBe(0);
    expect(synced.stdout).toMatch(/failed 0/);
  }, 1_200_000);

  it('holds no kernel image, and apt in it is consistent', async () => {
    const script = "apt-get check >/dev/null; dpkg-query -W -f '${Package} ${Status} ${Installed-Size}\\n' 'linux-image-*' 2>/dev/null | grep \" installed\" || true";
    const probed = await run('docker', ['run', '--rm', '--network', 'none', kernelImageRef(release, kernel), 'sh', '-ec', script], { allowFailure: true });
    expect(probed.exitCode, `apt-get check in ${kernelImageRef(release, kernel)}: ${probed.stderr}`).toBe(0);
    // only kfarm's empty placeholder may stand in for the kernel image (Installed-Size empty)
    for (const line of probed.stdout.split('\n').filter(Boolean))
      expect(line).toMatch(new RegExp(`^linux-image-${kernel.replace(/[.+]/g, '\\$&')}-unsigned install ok installed\\s*$`));
  }, 120_000);

  it('builds hello whose vermagic names the kernel and whose .comment names the headers’ gcc', async () => {
    const out = await tempDir(`${release}-hello`);
    const built = await kfarm(['build', example('hello'), '--out', out, '--kernels', kernel], env);
    expect(built.exitCode, built.stderr).toBe(0);
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
    expect(report.kernels.map((k) => [k.kernel, k.verdict])).toEqual([[kernel, 'built']]);
    const tarball = await readFile(path.join(out, report.kernels[0]?.tarball?.path ?? 'missing'));
    const entries = await extractTar(gunzipSync(tarball), { maxBytes: 1 << 26, maxEntries: 100, allowSymlinks: false }, 'tarball');
    const ko = moduleEntry(entries, kernel, 'x86_64', 'hello');
    expect(ko?.data, `hello.ko for ${kernel}`).toBeDefined();
    // readelf reads ELF only: a module compressed as the kernel's own (.ko.xz) is unpacked first
    const file = path.join(out, 'hello.ko');
    await writeFile(file, await plainModule(ko?.data ?? Buffer.alloc(0), ko?.path ?? '.ko'));
    const vermagic = (await run('modinfo', ['-F', 'vermagic', file])).stdout;
    expect(vermagic.split(' ')[0]).toBe(kernel);
    const comment = (await run('readelf', ['-p', '.comment', file])).stdout;
    const majors = [...comment.matchAll(/GCC: \([^)]*\) (\d+)\./g)].map((m) => Number(m[1]));
    expect(majors.length, comment).toBeGreaterThan(0);
    expect(new Set(majors)).toEqual(new Set([gcc]));
  }, 600_000);
});
