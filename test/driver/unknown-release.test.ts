import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDriverResult } from '../../src/dkms/driver-result.js';
import { driverScript } from '../../src/dkms/driver-script.js';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { listKfarmImages, type KfarmImage } from '../../src/images/catalog.js';
import { packageRoot } from '../../src/paths.js';
import { packSource } from '../../src/source/source-archive.js';
import { buildOptions } from '../../src/config/build-options.js';
import { containerMounts } from '../../src/worker/container-mounts.js';

/**
 * driver.sh follows the dkms of the image's Debian release, by /etc/os-release's VERSION_ID
 * (its release table). A release it does not know is an error naming the VERSION_ID and the
 * supported ones, never a build under the newest release's rules (what it did before).
 * A real debian-12 kfarm image, its os-release replaced by a bind mount.
 */
let dir = '';
let image: KfarmImage | undefined;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'kfarm-unknown-release-'));
  image = (await listKfarmImages(new DockerRuntime())).find((i) => i.name === 'debian-12' && i.arch === 'x86_64');
}, 120_000);
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** driver.sh build in the image with the given os-release, the hello example as its source */
async function runWithOsRelease(osRelease: string) {
  expect(image, 'no debian-12 kfarm image: run scripts/setup.sh').toBeDefined();
  const file = path.join(dir, `os-release-${Math.random().toString(36).slice(2)}`);
  await writeFile(file, osRelease);
  const source = await packSource(path.join(packageRoot, 'examples', 'hello'));
  const kernel = image!.kernels[0]!;
  // the writable mounts a worker gives a build (the root filesystem stays as the image has it)
  const tmpfs = Object.entries(containerMounts(buildOptions({ diskMiB: 512 }), source.tar.length)).flatMap(([p, o]) => ['--tmpfs', `${p}:${o}`]);
  const run = await execa(
    'docker',
    [
      'run',
      '--rm',
      '-i',
      '--network',
      'none',
      '--label',
      'kfarm.test=driver',
      ...tmpfs,
      '-v',
      `${file}:/etc/os-release:ro`,
      '--entrypoint',
      'bash',
      image!.ref ?? image!.id,
      '-c',
      driverScript().script.toString('utf8'),
      'driver.sh',
      'build',
      kernel,
      image!.arch,
    ],
    { input: source.tar, encoding: 'buffer', reject: false, timeout: 300_000 },
  );
  const result = await execa('tar', ['-xOf', '-', 'out/result'], { input: run.stdout, reject: false });
  const makeLog = await execa('tar', ['-xOf', '-', 'out/tree/log/make.log'], { input: run.stdout, reject: false });
  return { exitCode: run.exitCode, log: Buffer.from(run.stderr).toString('utf8'), driver: parseDriverResult(result.stdout), result: result.stdout, makeLog: makeLog.stdout };
}

describe('an image whose Debian release the driver does not know', () => {
  it('VERSION_ID 14: failed driver-error naming it and the supported releases, before the module runs', async () => {
    const out = await runWithOsRelease('PRETTY_NAME="Debian GNU/Linux 14 (forky)"\nNAME="Debian GNU/Linux"\nVERSION_ID="14"\nID=debian\n');
    expect(out.exitCode, out.log).toBe(1);
    expect(out.result).toContain('verdict\tfailed');
    expect(out.result).toContain('reason\tdriver-error');
    expect(out.result).toMatch(
      /message\tthis image's Debian release has VERSION_ID 14, whose dkms kfarm's driver does not know: it supports VERSION_ID 11 \(bullseye, dkms 2\.8\.4\), 12 \(bookworm, dkms 3\.0\.10\) and 13 \(trixie, dkms 3\.2\.2\)/,
    );
    expect(out.driver.packageName, 'nothing of the module was read').toBeUndefined();
    expect(out.log).toContain('VERSION_ID 14');
  }, 300_000);

  it('neither VERSION_ID nor VERSION_CODENAME: the same error, saying there is none', async () => {
    const out = await runWithOsRelease('PRETTY_NAME="Debian GNU/Linux forky/sid"\nNAME="Debian GNU/Linux"\nID=debian\n');
    expect(out.exitCode, out.log).toBe(1);
    expect(out.result).toContain('reason\tdriver-error');
    expect(out.result).toContain('no VERSION_ID or VERSION_CODENAME in /etc/os-release, whose dkms kfarm');
  }, 300_000);

  it('no VERSION_ID, VERSION_CODENAME duke (a testing the driver was not told of): the error names the codename', async () => {
    const out = await runWithOsRelease('PRETTY_NAME="Debian GNU/Linux duke/sid"\nNAME="Debian GNU/Linux"\nVERSION_CODENAME=duke\nID=debian\n');
    expect(out.exitCode, out.log).toBe(1);
    expect(out.result).toContain('reason\tdriver-error');
    expect(out.result).toContain('no VERSION_ID and VERSION_CODENAME duke, whose dkms kfarm');
    expect(out.result).toContain('and VERSION_CODENAME forky (testing and unstable, dkms 3.2.2)');
  }, 300_000);
  it('VERSION_ID 12 through the same bind mount: builds (the mount is not what fails)', async () => {
    const out = await runWithOsRelease('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n');
    expect(out.result, out.log).toContain('verdict\tbuilt');
    expect(out.exitCode).toBe(0);
  }, 300_000);
});

/** testing, unstable and experimental (on sid) images have no VERSION_ID: forky is their codename, and their dkms is trixie's 3.2.2 */
describe('a testing or unstable image (VERSION_CODENAME forky, no VERSION_ID)', () => {
  it("builds under dkms 3.2.2's rules: make.log opens with its header", async () => {
    const out = await runWithOsRelease('PRETTY_NAME="Debian GNU/Linux forky/sid"\nNAME="Debian GNU/Linux"\nVERSION_CODENAME=forky\nID=debian\n');
    expect(out.result, out.log).toContain('verdict\tbuilt');
    expect(out.exitCode).toBe(0);
    expect(out.makeLog.split('\n')[0]).toMatch(/^DKMS \(dkms-3\.2\.2\) make\.log for hello\//);
  }, 300_000);
});
