import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { packTar } from '../../src/executor/archive.js';
import { readPackInputs } from '../../src/packaging/pack-input.js';
import type { PackInput } from '../../src/packaging/packer.js';
import type { WrittenFile } from '../../src/util/write-atomic.js';
import { kmodRpmPacker } from '../../src/packaging/kmod-rpm/kmod-rpm-packer.js';
import { dkmsRpmPacker } from '../../src/packaging/dkms-rpm/dkms-rpm-packer.js';
import { oracleImage } from '../helpers/dkms-oracle.js';
import { debian12Kernels, example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';

/**
 * kmod-rpm and dkms-rpm of hello for a 6.1 kernel (.ko) and a 6.12 one (.ko.xz), checked with
 * the host's real rpm (query, digests, install into a --root) and installed for real, scriptlets
 * and all, into a debian-12 container holding dkms, both kernels' headers and Debian's rpm.
 */
const { k61: K61, k612: K612 } = await debian12Kernels();
const KMOD: Record<string, string> = { [K61]: `kmod-hello-${K61}-1.0.0-1.x86_64.rpm`, [K612]: `kmod-hello-${K612}-1.0.0-1.x86_64.rpm` };
const DKMS = 'hello-dkms-bin-1.0.0-1.noarch.rpm';
const FILE: Record<string, string> = { [K61]: 'hello.ko', [K612]: 'hello.ko.xz' };

const runtime = new DockerRuntime();
const logger = pino({ level: 'silent' });
let dir: string;
let input: PackInput;
let kmod: WrittenFile[];
let dkms: WrittenFile[];

const rpm = async (args: string[]) => {
  const r = await execa('rpm', args, { reject: false, env: { LC_ALL: 'C' } });
  expect(r.exitCode, `rpm ${args.join(' ')}: ${String(r.stderr)}`).toBe(0);
  return String(r.stdout);
};
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The dkms oracle plus Debian's rpm (the Debian archive is reachable), cached by content. */
async function rpmOracleImage(): Promise<string> {
  const base = await oracleImage();
  const dockerfile = Buffer.from(
    `FROM ${base}\nRUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rpm && apt-get clean && rm -rf /var/lib/apt/lists/*\nLABEL io.kfarm.image=""\n`,
  );
  const ref = `kfarm-test/dkms-oracle-rpm:${sha(dockerfile).slice(0, 16)}`;
  if (!(await runtime.inspectImage(ref))) {
    await runtime.buildImage({
      context: await packTar([{ path: 'Dockerfile', type: 'file', mode: 0o644, data: dockerfile }]),
      tag: ref,
      buildArgs: {},
      labels: {},
      onLine: () => undefined,
    });
  }
  return ref;
}

async function inContainer(script: string, files: Record<string, Buffer>): Promise<{ exitCode: number; output: string }> {
  const input = await packTar([
    { path: 'in', type: 'directory', mode: 0o755 },
    ...Object.entries(files).map(([name, data]) => ({ path: `in/${name}`, type: 'file' as const, mode: 0o644, data })),
  ]);
  return runtime.runHelper(await rpmOracleImage(), ['bash', '-c', script], input);
}

beforeAll(async () => {
  dir = await tempDir('pack-rpm');
  const out = path.join(dir, 'build');
  const build = await kfarm(['build', example('hello'), '--out', out, '--kernels', `${K61},${K612}`], await isolatedEnv('pack-rpm'));
  expect(build.exitCode, build.stderr).toBe(0);
  const inputs = await readPackInputs(out);
  expect(inputs).toHaveLength(1);
  input = inputs[0]!;
  kmod = await kmodRpmPacker.pack(input, { outDir: path.join(dir, 'a'), logger });
  dkms = await dkmsRpmPacker.pack(input, { outDir: path.join(dir, 'a'), logger });
}, 900_000);

describe('kmod-rpm packer', () => {
  it('writes one kmod-<name>-<kver> package per kernel, + kept in the name', () => {
    expect(kmod.map((w) => w.path).sort()).toEqual(Object.values(KMOD).sort());
  });

  it('is byte-reproducible: packing again (another rpmbuild, another temp dir) gives the same bytes', async () => {
    const again = await kmodRpmPacker.pack(input, { outDir: path.join(dir, 'b'), logger });
    expect(again).toEqual(kmod);
    for (const w of kmod) {
      const [a, b] = await Promise.all([readFile(path.join(dir, 'a', w.path)), readFile(path.join(dir, 'b', w.path))]);
      expect(a.equals(b)).toBe(true);
      expect(sha(a)).toBe(w.sha256);
    }
  }, 120_000);

  it.each([K61, K612])('%s: header, files, dependencies and digests as rpm reads them', async (k) => {
    const file = path.join(dir, 'a', KMOD[k]!);
    const qf = await rpm(['-qp', '--qf', '%{NAME}|%{VERSION}|%{RELEASE}|%{ARCH}|%{BUILDHOST}|%{BUILDTIME}|%{SIGMD5}|%{RSAHEADER}\n', file]);
    expect(qf.split('|').slice(0, 6)).toEqual([`kmod-hello-${k}`, '1.0.0', '1', 'x86_64', 'kfarm', String(input.sourceDateEpoch)]);
    expect(qf.trim().endsWith('(none)')).toBe(true); // no signature
    expect(await rpm(['-qip', file])).toMatch(/^Name\s+: kmod-hello-/m);
    expect((await rpm(['-qlp', file])).split('\n')).toEqual([`/usr/lib/modules/${k}/extra`, `/usr/lib/modules/${k}/extra/hello`, `/usr/lib/modules/${k}/extra/hello/${FILE[k]}`]);
    const kevr = k === K61 ? '6.1.0_57-amd64' : k;
    expect((await rpm(['-qp', '--requires', file])).split('\n')).toContain(`kernel-uname-r = ${kevr}`);
    expect((await rpm(['-qp', '--provides', file])).split('\n')).toEqual(expect.arrayContaining(['kmod(hello.ko)', 'hello-kmod = 1.0.0-1', `kernel-modules-for-kernel = ${kevr}`]));
    expect(await rpm(['-K', file])).toMatch(/: digests OK$/);
    const scripts = await rpm(['-qp', '--scripts', file]);
    expect(scripts).toContain(`depmod -a '${k}'`);
    expect(scripts).toMatch(/postuninstall scriptlet/);
  });

  it('rpmbuild takes the escaped names: ~ in a kernel release, - in a module version, a multi-dash kernel EVR', async () => {
    const k = { ...input.kernels[0]!, kernel: '6.1~rc1-1-amd64' };
    const [w] = await kmodRpmPacker.pack({ ...input, version: '2.0-rc1', kernels: [k] }, { outDir: path.join(dir, 'names'), logger });
    expect(w!.path).toBe('kmod-hello-6.1_rc1-1-amd64-2.0_rc1-1.x86_64.rpm');
    const file = path.join(dir, 'names', w!.path);
    expect(await rpm(['-qp', '--qf', '%{NAME}|%{VERSION}\n', file])).toBe('kmod-hello-6.1_rc1-1-amd64|2.0_rc1');
    expect((await rpm(['-qp', '--requires', file])).split('\n')).toContain('kernel-uname-r = 6.1~rc1_1-amd64');
    expect((await rpm(['-qlp', file])).split('\n')).toContain(`/usr/lib/modules/6.1~rc1-1-amd64/extra/hello/${k.modules[0]!.fileName}`);
  }, 120_000);

  it('builds an aarch64 package on this host for an arm64 kernel (rpmbuild --target)', async () => {
    const k = { ...input.kernels[0]!, kernel: '6.1.0-57-arm64', arch: 'aarch64', debianArch: 'arm64' };
    const [w] = await kmodRpmPacker.pack({ ...input, kernels: [k] }, { outDir: path.join(dir, 'arm64'), logger });
    expect(w!.path).toBe('kmod-hello-6.1.0-57-arm64-1.0.0-1.aarch64.rpm');
    expect(await rpm(['-qp', '--qf', '%{NAME}|%{ARCH}|%{OS}\n', path.join(dir, 'arm64', w!.path)])).toBe('kmod-hello-6.1.0-57-arm64|aarch64|linux');
  }, 120_000);

  it('installs into a --root (no deps, no scripts) with the module where kmodtool puts it, root-owned, mode 644', async () => {
    const root = path.join(dir, 'root');
    for (const k of [K61, K612]) await rpm(['-i', '--force-debian', '--root', root, '--nodeps', '--noscripts', path.join(dir, 'a', KMOD[k]!)]);
    for (const k of [K61, K612]) {
      const installed = await readFile(path.join(root, 'usr/lib/modules', k, 'extra/hello', FILE[k]!));
      const mod = input.kernels.find((x) => x.kernel === k)!.modules[0]!;
      expect(installed.equals(mod.data)).toBe(true);
      const verify = await rpm(['-q', '--root', root, '--qf', '[%{FILENAMES} %{FILEMODES:octal} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEMTIMES}\n]', `kmod-hello-${k}`]);
      expect(verify).toContain(`/usr/lib/modules/${k}/extra/hello/${FILE[k]} 100644 root:root ${input.sourceDateEpoch}`);
    }
  });

  it('scriptlets in debian-12: %post depmods the kernel, %postun takes it out again, and no depmod is no failure', async () => {
    const files = { 'k61.rpm': await readFile(path.join(dir, 'a', KMOD[K61]!)), 'k612.rpm': await readFile(path.join(dir, 'a', KMOD[K612]!)) };
    const r = await inContainer(
      [
        `rpm -i --force-debian --nodeps /in/k61.rpm; echo "@@install $?"`,
        `grep -c '^extra/hello/hello.ko:' /lib/modules/${K61}/modules.dep; echo "@@dep"`,
        `rpm -e kmod-hello-${K61}; echo "@@erase $?"`,
        `grep -c '^extra/hello/hello.ko:' /lib/modules/${K61}/modules.dep; echo "@@dep-after"`,
        // without depmod the package still installs and erases
        `mv "$(command -v depmod)" /tmp/depmod-hidden; command -v depmod || echo "@@no-depmod"`,
        `rpm -i --force-debian --nodeps /in/k612.rpm; echo "@@install-nodepmod $?"`,
        `rpm -e kmod-hello-${K612}; echo "@@erase-nodepmod $?"`,
      ].join('\n'),
      files,
    );
    expect(r.output).toMatch(/^@@install 0$/m);
    expect(r.output).toMatch(/^1\n@@dep$/m);
    expect(r.output).toMatch(/^@@erase 0$/m);
    expect(r.output).toMatch(/^0\n@@dep-after$/m);
    expect(r.output).toMatch(/^@@no-depmod$/m);
    expect(r.output).toMatch(/^@@install-nodepmod 0$/m);
    expect(r.output).toMatch(/^@@erase-nodepmod 0$/m);
  }, 900_000);
});

describe('dkms-rpm packer', () => {
  it('writes one noarch <name>-dkms-bin package, byte-reproducible', async () => {
    expect(dkms.map((w) => w.path)).toEqual([DKMS]);
    const again = await dkmsRpmPacker.pack(input, { outDir: path.join(dir, 'b'), logger });
    expect(again).toEqual(dkms);
    const [a, b] = await Promise.all([readFile(path.join(dir, 'a', DKMS)), readFile(path.join(dir, 'b', DKMS))]);
    expect(a.equals(b)).toBe(true);
  }, 120_000);

  it('holds one binaries-only tarball per kernel and dkms.conf in /usr/src, requires dkms, digests OK', async () => {
    const file = path.join(dir, 'a', DKMS);
    expect((await rpm(['-qlp', file])).split('\n')).toEqual([
      '/usr/share/hello-dkms-bin',
      `/usr/share/hello-dkms-bin/hello-1.0.0-kernel${K61}-x86_64.dkms.tar.gz`,
      `/usr/share/hello-dkms-bin/hello-1.0.0-kernel${K612}-x86_64.dkms.tar.gz`,
      '/usr/src/hello-1.0.0',
      '/usr/src/hello-1.0.0/dkms.conf',
    ]);
    expect(await rpm(['-qp', '--qf', '%{NAME}|%{VERSION}|%{RELEASE}|%{ARCH}\n', file])).toBe('hello-dkms-bin|1.0.0|1|noarch');
    expect((await rpm(['-qp', '--requires', file])).split('\n')).toContain('dkms');
    expect(await rpm(['-K', file])).toMatch(/: digests OK$/);
  });

  it('installs with real rpm into debian-12: dkms status lists both kernels installed, rpm -e removes them', async () => {
    const r = await inContainer(
      [
        // The image holds the kernels' headers, not the kernels. dkms takes a module's suffix from
        // the installed kernel's modules.dep (Debian's 6.12 modules are .ko.xz, 6.1's .ko): give
        // each kernel the modules.dep its linux-image package would, so 6.12's .ko.xz is seen as built.
        `mkdir -p /lib/modules/${K61}/kernel /lib/modules/${K612}/kernel`,
        `echo 'kernel/fs/fat/fat.ko:' > /lib/modules/${K61}/modules.dep`,
        `echo 'kernel/fs/fat/fat.ko.xz:' > /lib/modules/${K612}/modules.dep`,
        'rpm -i --force-debian --nodeps /in/pkg.rpm; echo "@@install $?"',
        'echo "@@status"; dkms status 2>/dev/null; echo "@@status-end"',
        `ls /lib/modules/${K61}/updates/dkms/ /lib/modules/${K612}/updates/dkms/`,
        'rpm -e hello-dkms-bin; echo "@@erase $?"',
        'echo "@@after"; dkms status 2>&1; ls /var/lib/dkms/; echo "@@after-end"',
        `ls /lib/modules/${K61}/updates/dkms/hello.ko /lib/modules/${K612}/updates/dkms/hello.ko.xz 2>/dev/null || echo "@@gone"`,
      ].join('\n'),
      { 'pkg.rpm': await readFile(path.join(dir, 'a', DKMS)) },
    );
    expect(r.output).toMatch(/^@@install 0$/m);
    const status = /@@status\n([\s\S]*?)@@status-end/.exec(r.output)?.[1] ?? '';
    expect(status, r.output).toMatch(new RegExp(`^hello/1\\.0\\.0, ${K61.replace(/[.+]/g, '\\$&')}, x86_64: installed`, 'm'));
    expect(status, r.output).toMatch(new RegExp(`^hello/1\\.0\\.0, ${K612.replace(/[.+]/g, '\\$&')}, x86_64: installed`, 'm'));
    expect(r.output).toMatch(/^@@erase 0$/m);
    expect(/@@after\n([\s\S]*?)@@after-end/.exec(r.output)?.[1] ?? 'missing').not.toMatch(/hello/);
    expect(r.output).toMatch(/^@@gone$/m);
  }, 900_000);

  it('installs the prebuilt modules on a kernel without its headers (modules dir only, no build link)', async () => {
    const r = await inContainer(
      [
        `rm -f /lib/modules/${K61}/build; mkdir -p /lib/modules/${K61}/kernel; echo 'kernel/fs/fat/fat.ko:' > /lib/modules/${K61}/modules.dep`,
        // 6.12 absent (neither headers nor modules): loaded, not installed. Its modules.dep stays
        // so that dkms status takes .ko.xz as this kernel's suffix and lists it as built.
        `rm -rf /lib/modules/${K612}; mkdir -p /lib/modules/${K612}; echo 'kernel/fs/fat/fat.ko.xz:' > /lib/modules/${K612}/modules.dep`,
        'rpm -i --force-debian --nodeps /in/pkg.rpm; echo "@@install $?"',
        'echo "@@status"; dkms status 2>/dev/null; echo "@@status-end"',
        `ls /lib/modules/${K61}/updates/dkms/hello.ko && echo "@@file"`,
        `ls /lib/modules/${K612}/updates 2>/dev/null || echo "@@no-612-install"`,
      ].join('\n'),
      { 'pkg.rpm': await readFile(path.join(dir, 'a', DKMS)) },
    );
    expect(r.output).toMatch(/^@@install 0$/m);
    const status = /@@status\n([\s\S]*?)@@status-end/.exec(r.output)?.[1] ?? '';
    expect(status, r.output).toMatch(new RegExp(`^hello/1\\.0\\.0, ${K61.replace(/[.+]/g, '\\$&')}, x86_64: installed`, 'm'));
    expect(status, r.output).toMatch(new RegExp(`^hello/1\\.0\\.0, ${K612.replace(/[.+]/g, '\\$&')}, x86_64: built`, 'm'));
    expect(r.output, r.output).toMatch(/^@@file$/m);
    expect(r.output, r.output).toMatch(/^@@no-612-install$/m);
  }, 900_000);

  it('%post takes dkms#362 (ldtarball exits 1 without /usr/src/<m>-<v>/dkms.conf) as loaded when the kernel is in the tree', async () => {
    const r = await inContainer(
      [
        'rpm -i --force-debian --nodeps --noscripts /in/pkg.rpm; echo "@@install $?"',
        "rpm -q --qf '%{POSTIN}' hello-dkms-bin > /tmp/post.sh",
        'rm -rf /usr/src/hello-1.0.0',
        'dkms ldtarball --force /usr/share/hello-dkms-bin/*6.1.0-57*.tar.gz >/dev/null 2>&1; echo "@@raw $?"',
        'dkms remove -m hello -v 1.0.0 --all >/dev/null 2>&1; rm -rf /var/lib/dkms/hello /usr/src/hello-1.0.0',
        'sh /tmp/post.sh 2>/tmp/post.err; echo "@@post $?"',
        'grep -c "exited with status" /tmp/post.err; echo "@@complaints"',
        'ls -d /var/lib/dkms/hello/1.0.0/*/x86_64/module',
      ].join('\n'),
      { 'pkg.rpm': await readFile(path.join(dir, 'a', DKMS)) },
    );
    expect(r.output).toMatch(/^@@install 0$/m);
    expect(r.output, r.output).toMatch(/^@@raw 1$/m); // the bug is there to be tolerated
    expect(r.output).toMatch(/^@@post 0$/m);
    expect(r.output, r.output).toMatch(/^0\n@@complaints$/m);
    for (const k of [K61, K612]) expect(r.output).toContain(`/var/lib/dkms/hello/1.0.0/${k}/x86_64/module`);
  }, 900_000);

  it('never fails the install where no kernel of the package is present: loaded (built), not installed', async () => {
    const r = await inContainer(
      [
        `rm -rf /lib/modules/${K61} /lib/modules/${K612}`,
        'rpm -i --force-debian --nodeps /in/pkg.rpm; echo "@@install $?"',
        'echo "@@status"; dkms status; echo "@@status-end"',
        'rpm -e hello-dkms-bin; echo "@@erase $?"',
      ].join('\n'),
      { 'pkg.rpm': await readFile(path.join(dir, 'a', DKMS)) },
    );
    expect(r.output).toMatch(/^@@install 0$/m);
    const status = /@@status\n([\s\S]*?)@@status-end/.exec(r.output)?.[1] ?? '';
    expect(status, r.output).toMatch(/: built/);
    expect(status).not.toMatch(/installed/);
    expect(r.output).toMatch(/^@@erase 0$/m);
  }, 900_000);
});
