import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { packTar } from '../../src/executor/archive.js';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { bmdebPacker } from '../../src/packaging/bmdeb/bmdeb-packer.js';
import { dkmsDebPacker } from '../../src/packaging/dkms-deb/dkms-deb-packer.js';
import { readPackInputs } from '../../src/packaging/pack-input.js';
import type { PackInput } from '../../src/packaging/packer.js';
import type { WrittenFile } from '../../src/util/write-atomic.js';
import { run } from '../../src/process/run.js';
import { runOracle } from '../helpers/dkms-oracle.js';
import { debian12Kernels, example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';
import { releaseKernel } from '../helpers/run-driver.js';
import { parseDkmsStatus, releaseDkmsImage } from '../helpers/release-dkms.js';

/**
 * The bmdeb and dkms-deb packers against the real tools: dpkg-deb reads what they wrote, dpkg
 * installs it in a container of the release, depmod / modinfo / dkms see the result. hello is
 * built for a 6.1 kernel (.ko) and a 6.12 one (.ko.xz) of debian-12, and a 7.3 one of debian-13
 * for trixie's dkms 3.2.2.
 */
const { k61: K61, k612: K612 } = await debian12Kernels();
let K73 = ''; // debian-13's newest generic kernel, synced in its test when missing
const kernelImage = (k: string) => `kfarm/debian-12:${k.replace(/\+/g, '_')}`;
const fileOf = (k: string) => (k === K61 ? 'hello.ko' : 'hello.ko.xz');
const bmdebOf = (k: string) => `hello-modules-${k}_1.0.0_amd64.deb`;
const DKMS_DEB = 'hello-dkms_1.0.0_amd64.deb';

const runtime = new DockerRuntime();
const logger = pino({ level: 'silent' });
let dir: string;
let input: PackInput;
let written: WrittenFile[];

async function build(kernels: string[], out: string): Promise<PackInput> {
  const result = await kfarm(['build', example('hello'), '--out', out, '--kernels', kernels.join(',')], await isolatedEnv('pack-deb'));
  expect(result.exitCode, result.stderr).toBe(0);
  const inputs = await readPackInputs(out);
  expect(inputs).toHaveLength(1);
  return inputs[0]!;
}

const inTar = async (files: Record<string, Buffer>) =>
  packTar([{ path: 'in', type: 'directory', mode: 0o755 }, ...Object.entries(files).map(([name, data]) => ({ path: `in/${name}`, type: 'file' as const, mode: 0o644, data }))]);

beforeAll(async () => {
  dir = await tempDir('pack-deb');
  input = await build([K61, K612], path.join(dir, 'build'));
  written = [...(await bmdebPacker.pack(input, { outDir: path.join(dir, 'a'), logger })), ...(await dkmsDebPacker.pack(input, { outDir: path.join(dir, 'a'), logger }))];
}, 900_000);

describe('bmdeb and dkms-deb: what dpkg-deb reads', () => {
  it('writes one bmdeb per kernel and one dkms-deb', () => {
    expect(written.map((w) => w.path).sort()).toEqual([DKMS_DEB, bmdebOf(K61), bmdebOf(K612)].sort());
  });

  it('is byte-reproducible: packing the same input again gives the same sha256', async () => {
    const again = [...(await bmdebPacker.pack(input, { outDir: path.join(dir, 'b'), logger })), ...(await dkmsDebPacker.pack(input, { outDir: path.join(dir, 'b'), logger }))];
    expect(again).toEqual(written);
    for (const w of written) {
      const bytes = await readFile(path.join(dir, 'b', w.path));
      expect(createHash('sha256').update(bytes).digest('hex'), w.path).toBe(w.sha256);
    }
  });

  it.each([K61, K612])('bmdeb for %s: mkbmdeb fields, the module in updates/dkms as root:root 0644, mtimes SOURCE_DATE_EPOCH', async (k) => {
    const deb = path.join(dir, 'a', bmdebOf(k));
    const field = async (f: string) => (await run('dpkg-deb', ['-f', deb, f])).stdout;
    expect(await field('Package')).toBe(`hello-modules-${k}`);
    expect(await field('Version')).toBe('1.0.0');
    expect(await field('Architecture')).toBe('amd64');
    expect(await field('Depends')).toBe(`linux-image-${k}`);
    expect(await field('Provides')).toBe('hello-modules');
    const info = (await run('dpkg-deb', ['-I', deb])).stdout;
    expect(info).toMatch(/\d+ bytes,\s+\d+ lines\s+\*\s+postinst/);
    expect(info).toMatch(/\d+ bytes,\s+\d+ lines\s+\*\s+postrm/);
    const listing = (await run('dpkg-deb', ['-c', deb])).stdout.split('\n');
    expect(listing).toContainEqual(
      expect.stringMatching(
        new RegExp(`^-rw-r--r-- root/root +\\d+ 2000-01-01 00:00 \\./lib/modules/${k.replace(/[.+]/g, '\\$&')}/updates/dkms/${fileOf(k).replace(/\./g, '\\.')}$`),
      ),
    );
    for (const line of listing.filter((l) => l !== '')) expect(line).toMatch(/^(drwxr-xr-x|-rw-r--r--) root\/root .* 2000-01-01 00:00 /);
    const postinst = (await run('dpkg-deb', ['-I', deb, 'postinst'])).stdout;
    expect(postinst).toContain(`depmod -a -F /boot/System.map-${k} ${k} || true`);
  });

  it('dkms-deb: Depends dkms, the per-kernel tarballs as kfarm build wrote them, dkms.conf in /usr/src', async () => {
    const deb = path.join(dir, 'a', DKMS_DEB);
    expect((await run('dpkg-deb', ['-f', deb, 'Package', 'Depends', 'Architecture'])).stdout).toBe('Package: hello-dkms\nDepends: dkms\nArchitecture: amd64');
    const listing = (await run('dpkg-deb', ['-c', deb])).stdout;
    expect(listing).toMatch(/-rw-r--r-- root\/root +\d+ 2000-01-01 00:00 \.\/usr\/src\/hello-1\.0\.0\/dkms\.conf/);
    const x = path.join(dir, 'x');
    await run('dpkg-deb', ['-x', deb, x]);
    const report = JSON.parse(await readFile(path.join(dir, 'build', 'report.json'), 'utf8')) as { kernels: Array<{ kernel: string; tarball: { path: string; sha256: string } }> };
    for (const k of report.kernels) {
      const shipped = await readFile(path.join(x, 'usr/share/hello-dkms', k.tarball.path));
      expect(createHash('sha256').update(shipped).digest('hex'), k.kernel).toBe(k.tarball.sha256);
    }
  });
});

describe('bmdeb: dpkg -i in a debian-12 container', () => {
  // kfarm's kernel images hold the kernel's headers, not linux-image-<kver>, so the Depends cannot
  // be met there: --force-depends installs it anyway. The postinst runs depmod only where the
  // kernel image is installed (its /boot/System.map, debhelper's guard): first without it (no
  // depmod, the install still succeeds), then with a System.map standing for linux-image.
  it.each([K61, K612])(
    '%s: the module lands, modinfo reads it, depmod lists it once the kernel is there, dpkg -r takes it away',
    async (k) => {
      const deb = bmdebOf(k);
      const mod = `/lib/modules/${k}/updates/dkms/${fileOf(k)}`;
      const script = [
        'set -u',
        `dpkg -i --force-depends /in/${deb} >/dev/null 2>&1; echo "@@install $?"`,
        `test -f ${mod} && echo @@file`,
        `echo "@@vermagic $(modinfo -F vermagic ${mod})"`,
        `test -e /lib/modules/${k}/modules.dep || echo @@no-depmod-without-kernel`,
        `dpkg -r hello-modules-${k} >/dev/null 2>&1; echo "@@remove $?"`,
        `: > /boot/System.map-${k}`,
        `dpkg -i --force-depends /in/${deb} >/dev/null 2>&1; echo "@@install2 $?"`,
        `grep -q '^updates/dkms/${fileOf(k)}:' /lib/modules/${k}/modules.dep && echo @@depmod`,
        `dpkg -r hello-modules-${k} >/dev/null 2>&1; echo "@@remove2 $?"`,
        `test -e ${mod} || echo @@gone`,
        `grep -q 'updates/dkms' /lib/modules/${k}/modules.dep || echo @@depmod-after-remove`,
      ].join('\n');
      const { output } = await runtime.runHelper(kernelImage(k), ['bash', '-c', script], await inTar({ [deb]: await readFile(path.join(dir, 'a', deb)) }));
      for (const marker of ['@@install 0', '@@file', '@@no-depmod-without-kernel', '@@remove 0', '@@install2 0', '@@depmod', '@@remove2 0', '@@gone', '@@depmod-after-remove']) {
        expect(output, output).toContain(marker);
      }
      expect(output).toContain(`@@vermagic ${k} SMP`);
    },
    300_000,
  );
});

describe('dkms-deb: dpkg -i into real dkms', () => {
  it("debian-12's dkms 3.0.10: every kernel loaded and installed, dpkg -r removes them", async () => {
    const { output } = await runOracle(
      [
        'set -u',
        // dkms 3.0.10 reads a module's suffix from the kernel's modules.dep, which on a machine
        // running 6.12 lists the kernel's own .ko.xz modules; the oracle holds only headers, so a
        // real .ko.xz (hello's own, from the package) stands in for them, and every depmod dkms
        // runs keeps it listed
        `mkdir -p /lib/modules/${K612}/kernel/fs`,
        `dpkg-deb --fsys-tarfile /in/${DKMS_DEB} | tar -xO './usr/share/hello-dkms/hello-1.0.0-kernel${K612}-x86_64.dkms.tar.gz' | tar -xzO --wildcards '*/module/hello.ko.xz' > /lib/modules/${K612}/kernel/fs/standin.ko.xz`,
        `depmod ${K612} && grep -q '^kernel/fs/standin.ko.xz:' /lib/modules/${K612}/modules.dep && echo @@standin`,
        `dpkg -i /in/${DKMS_DEB}; echo "@@install $?"`,
        'echo @@status; dkms status; echo @@end',
        `echo "@@vermagic61 $(modinfo -F vermagic /lib/modules/${K61}/updates/dkms/hello.ko)"`,
        `echo "@@vermagic612 $(modinfo -F vermagic /lib/modules/${K612}/updates/dkms/hello.ko.xz)"`,
        `dpkg -i /in/${DKMS_DEB} >/dev/null 2>&1; echo "@@reinstall $?"`,
        'echo @@status2; dkms status; echo @@end2',
        'dpkg -r hello-dkms; echo "@@remove $?"',
        'echo "@@after [$(dkms status)]"',
        `find /lib/modules/${K61}/updates /lib/modules/${K612}/updates -name 'hello.ko*' 2>/dev/null | wc -l | sed 's/^/@@left /'`,
        'test -e /var/lib/dkms/hello || echo @@tree-clean',
      ].join('\n'),
      { [DKMS_DEB]: await readFile(path.join(dir, 'a', DKMS_DEB)) },
    );
    expect(output, output).toContain('@@standin');
    expect(output, output).toContain('@@install 0');
    const status = parseDkmsStatus(output.slice(output.indexOf('@@status'), output.indexOf('@@end')));
    for (const k of [K61, K612]) expect(status, output).toContainEqual({ module: 'hello', version: '1.0.0', kernel: k, arch: 'x86_64', state: 'installed' });
    expect(output).toContain(`@@vermagic61 ${K61} SMP`);
    expect(output).toContain(`@@vermagic612 ${K612} SMP`);
    expect(output, output).toContain('@@reinstall 0');
    // reinstalling the same version (prerm upgrade, then postinst configure) leaves both installed
    const again = parseDkmsStatus(output.slice(output.indexOf('@@status2'), output.indexOf('@@end2')));
    for (const k of [K61, K612]) expect(again, output).toContainEqual({ module: 'hello', version: '1.0.0', kernel: k, arch: 'x86_64', state: 'installed' });
    expect(output, output).toContain('@@remove 0');
    expect(output).toContain('@@after []');
    expect(output).toContain('@@left 0');
    expect(output, output).toContain('@@tree-clean');
  }, 600_000);

  it("debian-13's dkms 3.2.2: a 7.3 kernel's module loaded and installed, dpkg -r removes it", async () => {
    K73 = await releaseKernel('debian-13');
    const trixie = await build([K73], path.join(dir, 'build-73'));
    const [deb] = await dkmsDebPacker.pack(trixie, { outDir: path.join(dir, 't'), logger });
    const image = await releaseDkmsImage('debian-13');
    // the checker image holds dkms, not the kernel: 3.2.2 picks the module suffix from the
    // kernel's own modules (any *.ko.xz below /lib/modules/<k>), which a machine running 7.3 has
    const script = [
      'set -u',
      `mkdir -p /lib/modules/${K73}/kernel/fs && : > /lib/modules/${K73}/kernel/fs/dummy.ko.xz`,
      `dpkg -i /in/${deb?.path ?? ''}; echo "@@install $?"`,
      'echo @@status; dkms status; echo @@end',
      `echo "@@vermagic $(modinfo -F vermagic /lib/modules/${K73}/updates/dkms/hello.ko.xz)"`,
      'dpkg -r hello-dkms; echo "@@remove $?"',
      'echo "@@after [$(dkms status)]"',
    ].join('\n');
    const { output } = await runtime.runHelper(image, ['bash', '-c', script], await inTar({ [deb?.path ?? '']: await readFile(path.join(dir, 't', deb?.path ?? '')) }));
    expect(output, output).toContain('@@install 0');
    const status = parseDkmsStatus(output.slice(output.indexOf('@@status'), output.indexOf('@@end')));
    expect(status, output).toContainEqual({ module: 'hello', version: '1.0.0', kernel: K73, arch: 'x86_64', state: 'installed' });
    expect(output).toContain(`@@vermagic ${K73} SMP`);
    expect(output, output).toContain('@@remove 0');
    expect(output).toContain('@@after []');
  }, 900_000);
});
