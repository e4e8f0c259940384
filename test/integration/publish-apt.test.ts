import { createHash } from 'node:crypto';
import { cp, mkdir, readFile, readdir, readlink, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { publishApt } from '../../src/publish/apt-repo.js';
import { debian12Kernels, example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';
import { parseDkmsStatus, releaseDkmsImage } from '../helpers/release-dkms.js';
import { repoTestKeys, type RepoTestKeys } from '../helpers/repo-test-key.js';
import { releaseKernel } from '../helpers/run-driver.js';

/**
 * The APT publisher end to end: hello built by the real CLI (`--format bmdeb,dkms-deb`),
 * published with reprepro and signed with a test key, then read by the fleet's own client:
 * apt-get in a debian-12 container (kfarm's own kernel image, no registry) that trusts only the
 * repository's public key (`Signed-By`), and in a debian-13 container (trixie's apt 3.0) on a
 * 7.3 kernel's build; the dkms-deb through apt into debian-12's real dkms, on a machine that runs
 * the kernel without its headers. A byte changed after signing is refused by apt.
 */
const { k61b: K_OLD, k61: K_NEW } = await debian12Kernels();
const kernelImage = (k: string, release = 'debian-12') => `kfarm/${release}:${k.replace(/\+/g, '_')}`;
const runtime = new DockerRuntime();
const logger = pino({ level: 'silent' });

let keys: RepoTestKeys;
let dir: string;
let outOld: string; // K_OLD, bmdeb + dkms-deb
let outNew: string; // K_NEW, bmdeb only
let outNewDkms: string; // K_NEW, dkms-deb too: hello-dkms 1.0.0 again, with other bytes
let K73: string; // debian-13's newest generic kernel (synced when missing, as pack-deb.test.ts does)
let out73: string; // K73, bmdeb + dkms-deb (hello-dkms 1.0.0 with 7.3's binaries)

async function build(kernel: string, formats: string, out: string): Promise<string> {
  const result = await kfarm(['build', example('hello'), '--out', out, '--kernels', kernel, '--format', formats], await isolatedEnv('publish-apt'));
  expect(result.exitCode, result.stderr).toBe(0);
  return out;
}

/** every file below dir (symlinks as their target), path → sha256 */
async function snapshot(root: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (d: string) => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else if (entry.isSymbolicLink()) files.set(path.relative(root, p), `-> ${await readlink(p)}`);
      else
        files.set(
          path.relative(root, p),
          createHash('sha256')
            .update(await readFile(p))
            .digest('hex'),
        );
    }
  };
  await walk(root);
  return files;
}

/** the repository and the public key, as a tar the helper container unpacks at / (in/repo, in/key.gpg) */
async function inputTar(repos: Record<string, string>): Promise<Buffer> {
  const stage = await tempDir('publish-apt-in');
  await mkdir(path.join(stage, 'in'));
  for (const [name, repo] of Object.entries(repos)) await cp(repo, path.join(stage, 'in', name), { recursive: true, verbatimSymlinks: true });
  await cp(keys.keyring, path.join(stage, 'in', 'key.gpg'));
  const tar = await execa('tar', ['-C', stage, '--owner=0', '--group=0', '-cf', '-', 'in'], { encoding: 'buffer' });
  return Buffer.from(tar.stdout);
}

/** sh: apt reads only the given repository, trusting only the test key; the kernel "installed" by a stand-in package */
const aptSetup = (repo: string, kernel: string, suite = 'bookworm') =>
  [
    'set -u',
    'rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*',
    `echo "deb [signed-by=/in/key.gpg] file:/in/${repo} ${suite} main" > /etc/apt/sources.list.d/kfarm.list`,
    // hello-modules-<k> depends on linux-image-<k>: a stand-in, as on a machine running that kernel
    `mkdir -p /tmp/li/DEBIAN && printf 'Package: linux-image-${kernel}\\nVersion: 1\\nArchitecture: amd64\\nMaintainer: t <t@t>\\nDescription: stand-in\\n' > /tmp/li/DEBIAN/control`,
    'dpkg-deb -b /tmp/li /tmp/li.deb >/dev/null && dpkg -i /tmp/li.deb >/dev/null',
  ].join('\n');

beforeAll(async () => {
  keys = await repoTestKeys();
  dir = await tempDir('publish-apt');
  outOld = await build(K_OLD, 'bmdeb,dkms-deb', path.join(dir, 'out-old'));
  outNew = await build(K_NEW, 'bmdeb', path.join(dir, 'out-new'));
  outNewDkms = await build(K_NEW, 'bmdeb,dkms-deb', path.join(dir, 'out-new-dkms'));
  K73 = await releaseKernel('debian-13');
  out73 = await build(K73, 'bmdeb,dkms-deb', path.join(dir, 'out-73'));
}, 1_500_000);
afterAll(async () => keys?.close());

describe('publishApt: a signed repository apt-get installs from', () => {
  let repo: string;

  beforeAll(async () => {
    repo = path.join(dir, 'repo');
    await publishApt({ repoDir: repo, outDirs: [outOld], keyFile: keys.plain, logger });
  }, 300_000);

  it('writes the pool, a dists symlink to a signed generation, and no secret key', async () => {
    expect(await readlink(path.join(repo, 'dists'))).toBe('generations/1');
    const files = await snapshot(repo);
    const names = [...files.keys()];
    expect(names).toContain(`pool/main/h/hello-dkms-bin/hello-modules-${K_OLD}_1.0.0_amd64.deb`);
    expect(names).toContain('pool/main/h/hello-dkms/hello-dkms_1.0.0_amd64.deb');
    expect(
      names.some((n) => /^pool\/main\/h\/hello-modules-amd64\/hello-modules-amd64_.*_amd64\.deb$/.test(n)),
      names.join('\n'),
    ).toBe(true);
    for (const f of ['Release', 'InRelease', 'Release.gpg', 'main/binary-amd64/Packages']) expect(names).toContain(`generations/1/bookworm/${f}`);
    const verified = await execa('gpgv', ['--keyring', keys.keyring, path.join(repo, 'dists/bookworm/InRelease')], { reject: false });
    expect(verified.exitCode, verified.stderr).toBe(0);
    // the secret key is nowhere in the repository (armored or binary)
    const secret = await readFile(keys.plain, 'utf8');
    const { stdout } = await execa('grep', ['-rlF', '-e', 'PRIVATE KEY BLOCK', '-e', secret.split('\n')[3] ?? 'x', repo], { reject: false });
    expect(stdout).toBe('');
  });

  it('apt-get update and install of the metapackage in debian-12 puts hello.ko under updates/dkms of the kernel', async () => {
    const script = [
      aptSetup('repo', K_OLD),
      'apt-get update 2>&1; echo "@@update $?"',
      'apt-get install -y --no-install-recommends hello-modules-amd64 2>&1; echo "@@install $?"',
      `test -f /lib/modules/${K_OLD}/updates/dkms/hello.ko && echo @@ko`,
      `dpkg-query -W -f '@@installed \${Package} \${Version}\\n' hello-modules-${K_OLD}`,
    ].join('\n');
    const { output } = await runtime.runHelper(kernelImage(K_OLD), ['bash', '-c', script], await inputTar({ repo }), 300_000);
    expect(output, output).toContain('@@update 0');
    expect(output, output).toContain('@@install 0');
    expect(output, output).toContain('@@ko');
    expect(output).toContain(`@@installed hello-modules-${K_OLD} 1.0.0`);
  }, 300_000);

  it("apt-get install hello-dkms into debian-12's dkms, on a machine running the kernel without its headers: dkms status says installed", async () => {
    // the release's own dkms (3.0.10) in a debian-12 container with no kernel headers; the
    // kernel "runs" there as far as dkms can tell: its /lib/modules/<k> holds its modules
    const script = [
      aptSetup('repo', K_OLD),
      `rm -rf /lib/modules/${K_OLD} && mkdir -p /lib/modules/${K_OLD}/kernel/fs && : > /lib/modules/${K_OLD}/kernel/fs/standin.ko && depmod ${K_OLD}`,
      `test -e /lib/modules/${K_OLD}/build || test -e /usr/src/linux-headers-${K_OLD} || echo @@no-headers`,
      'apt-get update 2>&1; echo "@@update $?"',
      'apt-get install -y --no-install-recommends hello-dkms 2>&1; echo "@@install $?"',
      'echo @@status; dkms status; echo @@end',
      `echo "@@vermagic $(modinfo -F vermagic /lib/modules/${K_OLD}/updates/dkms/hello.ko)"`,
      `grep -q '^updates/dkms/hello.ko:' /lib/modules/${K_OLD}/modules.dep && echo @@depmod`,
    ].join('\n');
    const { output } = await runtime.runHelper(await releaseDkmsImage('debian-12'), ['bash', '-c', script], await inputTar({ repo }), 300_000);
    expect(output, output).toContain('@@no-headers');
    expect(output, output).toContain('@@update 0');
    expect(output, output).toContain('@@install 0');
    const status = parseDkmsStatus(output.slice(output.indexOf('@@status'), output.indexOf('@@end')));
    expect(status, output).toEqual([{ module: 'hello', version: '1.0.0', kernel: K_OLD, arch: 'x86_64', state: 'installed' }]);
    expect(output).toContain(`@@vermagic ${K_OLD} SMP`);
    expect(output, output).toContain('@@depmod');
  }, 300_000);

  it('apt refuses a repository changed by one byte after signing: InRelease, Release (with Release.gpg), a package', async () => {
    const tampered = async (name: string, edit: (root: string) => Promise<void>) => {
      const copy = path.join(dir, name);
      await cp(repo, copy, { recursive: true, verbatimSymlinks: true });
      await edit(copy);
      return copy;
    };
    const flip = async (file: string, from: string, to: string) => {
      const text = await readFile(file, 'utf8');
      expect(text).toContain(from);
      await writeFile(file, text.replace(from, to));
    };
    const gen = 'generations/1/bookworm';
    const inrelease = await tampered('t-inrelease', (r) => flip(path.join(r, gen, 'InRelease'), 'Codename: bookworm', 'Codename: bookwork'));
    const release = await tampered('t-release', async (r) => {
      await execa('rm', [path.join(r, gen, 'InRelease')]);
      await flip(path.join(r, gen, 'Release'), 'Codename: bookworm', 'Codename: bookwork');
    });
    const untampered = await tampered('t-none', async (r) => execa('rm', [path.join(r, gen, 'InRelease')]).then(() => undefined));
    const pkg = await tampered('t-package', async (r) => {
      const deb = path.join(r, `pool/main/h/hello-dkms-bin/hello-modules-${K_OLD}_1.0.0_amd64.deb`);
      const data = await readFile(deb);
      data[data.length - 1] = (data[data.length - 1] ?? 0) ^ 1;
      await writeFile(deb, data);
    });
    const update = (name: string) => [
      'rm -f /etc/apt/sources.list.d/kfarm.list',
      `echo "deb [signed-by=/in/key.gpg] file:/in/${name} bookworm main" > /etc/apt/sources.list.d/kfarm.list`,
      'rm -rf /var/lib/apt/lists/*',
      `apt-get update 2>&1; echo "@@update-${name} $?"`,
      `apt-cache policy hello-modules-${K_OLD} | grep -q 'file:/in/${name}' && echo "@@listed-${name}"`,
    ];
    const script = [
      aptSetup('t-inrelease', K_OLD),
      ...update('t-inrelease'),
      ...update('t-release'),
      ...update('t-none'),
      ...update('t-package'),
      `apt-get install -y --no-install-recommends hello-modules-${K_OLD} 2>&1; echo "@@install-package $?"`,
      `test -e /lib/modules/${K_OLD}/updates/dkms/hello.ko || echo @@no-ko`,
    ].join('\n');
    const { output } = await runtime.runHelper(
      kernelImage(K_OLD),
      ['bash', '-c', script],
      await inputTar({ 't-inrelease': inrelease, 't-release': release, 't-none': untampered, 't-package': pkg }),
      300_000,
    );
    // the signed Release without InRelease is read (so the refusals below are about the byte)
    expect(output, output).toContain('@@listed-t-none');
    expect(output, output).toMatch(/@@update-t-inrelease [1-9]/);
    expect(output).not.toContain('@@listed-t-inrelease');
    expect(output, output).toMatch(/@@update-t-release [1-9]/);
    expect(output).not.toContain('@@listed-t-release');
    expect(output, output).toContain('@@listed-t-package');
    expect(output, output).toMatch(/@@install-package [1-9]/);
    expect(output).toMatch(/Hash Sum mismatch|hashes do not match|Size mismatch/i);
    expect(output).toContain('@@no-ko');
  }, 300_000);
});

describe('publishApt: a debian-13 client, and a release that arrives later', () => {
  it("a 7.3 kernel's build published after bookworm's: trixie gets its bmdeb and the published hello-dkms 1.0.0 (copied, not the new bytes); apt-get in debian-13 installs the metapackage", async () => {
    const repo = path.join(dir, 'repo-trixie');
    await publishApt({ repoDir: repo, outDirs: [outOld], keyFile: keys.plain, logger });
    const dkmsPool = 'pool/main/h/hello-dkms/hello-dkms_1.0.0_amd64.deb';
    const published = (await snapshot(repo)).get(dkmsPool);
    const result = await publishApt({ repoDir: repo, outDirs: [out73], keyFile: keys.plain, logger });
    expect(result.plan.add.map((a) => `${a.suite} ${a.pkg.package}`)).toEqual([`trixie hello-modules-${K73}`]);
    expect(result.plan.copies).toEqual([{ suite: 'trixie', from: 'bookworm', package: 'hello-dkms', version: '1.0.0', architecture: 'amd64' }]);
    expect((await snapshot(repo)).get(dkmsPool)).toBe(published);
    const trixiePackages = await readFile(path.join(repo, 'dists/trixie/main/binary-amd64/Packages'), 'utf8');
    expect(trixiePackages).toMatch(new RegExp(`Package: hello-dkms\\n(?:.+\\n)*?SHA256: ${published ?? 'x'}`));
    const script = [
      aptSetup('repo', K73, 'trixie'),
      // the kernel image's System.map, as linux-image leaves it: the bmdeb's postinst runs depmod
      `: > /boot/System.map-${K73}`,
      'apt-get update 2>&1; echo "@@update $?"',
      'apt-get install -y --no-install-recommends hello-modules-amd64 2>&1; echo "@@install $?"',
      `test -f /lib/modules/${K73}/updates/dkms/hello.ko.xz && echo @@ko`,
      `grep -q '^updates/dkms/hello.ko.xz:' /lib/modules/${K73}/modules.dep && echo @@depmod`,
      `echo "@@apt $(dpkg-query -W -f '\${Version}' apt)"`,
    ].join('\n');
    const { output } = await runtime.runHelper(kernelImage(K73, 'debian-13'), ['bash', '-c', script], await inputTar({ repo }), 300_000);
    expect(output, output).toContain('@@update 0');
    expect(output, output).toContain('@@install 0');
    expect(output, output).toContain('@@ko');
    expect(output, output).toContain('@@depmod');
    expect(output).toMatch(/@@apt 3\./);
  }, 300_000);
});

describe('publishApt: keep N', () => {
  it('keep 1: a new module version takes the older one out of the suite now and out of the pool one publish later', async () => {
    const src = path.join(dir, 'hello-1.1.0');
    await cp(example('hello'), src, { recursive: true });
    const conf = path.join(src, 'dkms.conf');
    await writeFile(conf, (await readFile(conf, 'utf8')).replace('PACKAGE_VERSION="1.0.0"', 'PACKAGE_VERSION="1.1.0"'));
    const out110 = path.join(dir, 'out-110');
    const built = await kfarm(['build', src, '--out', out110, '--kernels', K_NEW, '--format', 'bmdeb'], await isolatedEnv('publish-apt-110'));
    expect(built.exitCode, built.stderr).toBe(0);
    const repo = path.join(dir, 'repo-keep');
    await publishApt({ repoDir: repo, outDirs: [outOld, outNew], keyFile: keys.plain, logger });
    const result = await publishApt({ repoDir: repo, outDirs: [out110], keyFile: keys.plain, logger, keep: 1 });
    expect(result.plan.add.map((a) => `${a.pkg.package} ${a.pkg.version}`)).toEqual([`hello-modules-${K_NEW} 1.1.0`]);
    expect(result.plan.remove.map((e) => `${e.package} ${e.version}`).sort()).toEqual(['hello-dkms 1.0.0', `hello-modules-${K_OLD} 1.0.0`]);
    const packages = await readFile(path.join(repo, 'dists/bookworm/main/binary-amd64/Packages'), 'utf8');
    expect(
      packages
        .split('\n\n')
        .filter(Boolean)
        .map((stanza) => `${/^Package: (.+)$/m.exec(stanza)?.[1]} ${/^Version: (.+)$/m.exec(stanza)?.[1]}`)
        .sort(),
    ).toEqual([`hello-modules-${K_NEW} 1.1.0`, `hello-modules-amd64 ${K_NEW.replace(/-amd64$/, '').replace(/-/g, '.')}+1.1.0`]);
    const oldFiles = [`pool/main/h/hello-dkms-bin/hello-modules-${K_OLD}_1.0.0_amd64.deb`, 'pool/main/h/hello-dkms/hello-dkms_1.0.0_amd64.deb'];
    // still in the pool for a reader of the generation before; gone after the next publish
    for (const f of oldFiles) await expect(stat(path.join(repo, f))).resolves.toBeTruthy();
    const again = await publishApt({ repoDir: repo, outDirs: [out110], keyFile: keys.plain, logger, keep: 1 });
    expect(again.plan.add).toEqual([]);
    for (const f of oldFiles) await expect(stat(path.join(repo, f)), f).rejects.toThrow(/ENOENT/);
    await expect(stat(path.join(repo, `pool/main/h/hello-dkms-bin/hello-modules-${K_NEW}_1.1.0_amd64.deb`))).resolves.toBeTruthy();
    const verified = await execa('gpgv', ['--keyring', keys.keyring, path.join(repo, 'dists/bookworm/InRelease')], { reject: false });
    expect(verified.exitCode, verified.stderr).toBe(0);
  }, 600_000);
});

describe('publishApt: incremental, serialised, refusing', () => {
  it("a newer kernel's build adds its package, moves the metapackage, and changes no other published file", async () => {
    const repo = path.join(dir, 'repo-inc');
    await publishApt({ repoDir: repo, outDirs: [outOld], keyFile: keys.plain, logger });
    const before = await snapshot(repo);
    const result = await publishApt({ repoDir: repo, outDirs: [outNew], keyFile: keys.plain, logger });
    const after = await snapshot(repo);
    expect(result.plan.add.map((a) => a.pkg.package)).toEqual([`hello-modules-${K_NEW}`]);
    expect(result.plan.metapackages.map((m) => m.depends.package)).toEqual([`hello-modules-${K_NEW}`]);
    // every pool file that was there is there with the same bytes; generation 1 is kept for readers
    for (const [name, sha] of before) if (name.startsWith('pool/') || name.startsWith('generations/1/')) expect(after.get(name), name).toBe(sha);
    expect(after.get('dists')).toBe('-> generations/2');
    const packages = await readFile(path.join(repo, 'dists/bookworm/main/binary-amd64/Packages'), 'utf8');
    expect(packages).toContain(`Package: hello-modules-${K_OLD}\n`);
    expect(packages).toContain(`Package: hello-modules-${K_NEW}\n`);
    expect(packages).toMatch(new RegExp(`Package: hello-modules-amd64\\n(?:.+\\n)*?Depends: hello-modules-${K_NEW.replace(/[.+]/g, '\\$&')} \\(>= 1\\.0\\.0\\)`));
    // a client that read generation 1's InRelease just before the swap finds its Packages by hash in generation 2
    const oldPackages = createHash('sha256')
      .update(await readFile(path.join(repo, 'generations/1/bookworm/main/binary-amd64/Packages')))
      .digest('hex');
    expect(await readFile(path.join(repo, 'dists/bookworm/Release'), 'utf8')).toMatch(/^Acquire-By-Hash: yes$/m);
    expect(after.get(`generations/2/bookworm/main/binary-amd64/by-hash/SHA256/${oldPackages}`)).toBe(oldPackages);
    // a third publish removes generation 1 and keeps 2 (the one readers may still read) and 3
    await publishApt({ repoDir: repo, outDirs: [outOld, outNew], keyFile: keys.plain, logger });
    expect((await readdir(path.join(repo, 'generations'))).sort()).toEqual(['2', '3']);
  }, 300_000);

  it("apt-get upgrade --with-new-pkgs (what `apt upgrade` does) follows the metapackage to the newer kernel's module", async () => {
    const repo = path.join(dir, 'repo-upgrade');
    await publishApt({ repoDir: repo, outDirs: [outOld], keyFile: keys.plain, logger });
    const first = path.join(dir, 'repo-upgrade-1');
    await cp(repo, first, { recursive: true, verbatimSymlinks: true });
    await publishApt({ repoDir: repo, outDirs: [outNew], keyFile: keys.plain, logger });
    const standIn = (k: string) =>
      `rm -rf /tmp/li && mkdir -p /tmp/li/DEBIAN && printf 'Package: linux-image-${k}\\nVersion: 1\\nArchitecture: amd64\\nMaintainer: t <t@t>\\nDescription: stand-in\\n' > /tmp/li/DEBIAN/control && dpkg-deb -b /tmp/li /tmp/li.deb >/dev/null && dpkg -i /tmp/li.deb >/dev/null`;
    const script = [
      aptSetup('repo', K_OLD),
      'apt-get update >/dev/null 2>&1; apt-get install -y --no-install-recommends hello-modules-amd64 2>&1; echo "@@install $?"',
      `test -f /lib/modules/${K_OLD}/updates/dkms/hello.ko && echo @@ko-old`,
      // the newer kernel arrives (from Debian's archive on a real machine), then kfarm publishes its module
      standIn(K_NEW),
      'rm -rf /in/repo && mv /in/repo-new /in/repo',
      'apt-get update 2>&1; echo "@@update $?"',
      'apt-get upgrade -y --with-new-pkgs 2>&1; echo "@@upgrade $?"',
      `test -f /lib/modules/${K_NEW}/updates/dkms/hello.ko && echo @@ko-new`,
      `dpkg-query -W -f '@@meta \${Version} \${Depends}\\n' hello-modules-amd64`,
    ].join('\n');
    const { output } = await runtime.runHelper(kernelImage(K_OLD), ['bash', '-c', script], await inputTar({ repo: first, 'repo-new': repo }), 300_000);
    expect(output, output).toContain('@@install 0');
    expect(output, output).toContain('@@ko-old');
    expect(output, output).toContain('@@update 0');
    expect(output, output).toContain('@@upgrade 0');
    expect(output, output).toContain('@@ko-new');
    expect(output).toContain(`@@meta ${K_NEW.replace(/-amd64$/, '').replace(/-/g, '.')}+1.0.0 hello-modules-${K_NEW} (>= 1.0.0)`);
  }, 300_000);

  it('two publishes at once to one new repository are serialised: both succeed, the repository holds both', async () => {
    const repo = path.join(dir, 'repo-race');
    await Promise.all([
      publishApt({ repoDir: repo, outDirs: [outOld], keyFile: keys.plain, logger }),
      publishApt({ repoDir: repo, outDirs: [outNew], keyFile: keys.plain, logger }),
    ]);
    const packages = await readFile(path.join(repo, 'dists/bookworm/main/binary-amd64/Packages'), 'utf8');
    expect(packages).toContain(`Package: hello-modules-${K_OLD}\n`);
    expect(packages).toContain(`Package: hello-modules-${K_NEW}\n`);
    const verified = await execa('gpgv', ['--keyring', keys.keyring, path.join(repo, 'dists/bookworm/InRelease')], { reject: false });
    expect(verified.exitCode, verified.stderr).toBe(0);
  }, 300_000);

  it("holds a published dkms-deb version rebuilt for another kernel: the new kernel's bmdeb goes in, the published dkms-deb stays, a warning says what to do", async () => {
    const repo = path.join(dir, 'repo-bytes');
    await publishApt({ repoDir: repo, outDirs: [outOld], keyFile: keys.plain, logger });
    const before = await snapshot(repo);
    const warnings: string[] = [];
    const result = await publishApt({
      repoDir: repo,
      outDirs: [outNewDkms],
      keyFile: keys.plain,
      logger: pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) }),
    });
    expect(result.plan.add.map((a) => a.pkg.package)).toEqual([`hello-modules-${K_NEW}`]);
    expect(result.plan.held.map((h) => h.pkg.file)).toEqual([path.join(outNewDkms, 'dkms-deb/hello-dkms_1.0.0_amd64.deb')]);
    expect(warnings.join('\n')).toMatch(
      /hello-dkms_1\.0\.0_amd64\.deb .* is held, not published: the repository \(bookworm\) has this version with other bytes.*raise PACKAGE_VERSION in dkms\.conf and build again/,
    );
    const after = await snapshot(repo);
    for (const [name, sha] of before) if (name.startsWith('pool/')) expect(after.get(name), name).toBe(sha);
    const packages = await readFile(path.join(repo, 'dists/bookworm/main/binary-amd64/Packages'), 'utf8');
    expect(packages).toContain(`Package: hello-modules-${K_NEW}\n`);
    expect(packages.match(/^Package: hello-dkms$/gm)).toHaveLength(1);
    // a kernel's package with other bytes (the same bmdeb re-made with one more file) is still refused, and nothing is written
    const changed = path.join(dir, 'out-new-rebuilt');
    await cp(outNew, changed, { recursive: true });
    const deb = `bmdeb/hello-modules-${K_NEW}_1.0.0_amd64.deb`;
    const tree = path.join(dir, 'rebuilt-tree');
    await execa('dpkg-deb', ['-R', path.join(changed, deb), tree]);
    await writeFile(path.join(tree, 'kfarm-test-extra'), 'other bytes\n');
    await execa('dpkg-deb', ['--root-owner-group', '-b', tree, path.join(changed, deb)]);
    const other = await readFile(path.join(changed, deb));
    const report = JSON.parse(await readFile(path.join(changed, 'report.json'), 'utf8')) as { packages: Array<{ path: string; sha256: string; size: number }> };
    for (const p of report.packages) if (p.path === deb) Object.assign(p, { sha256: createHash('sha256').update(other).digest('hex'), size: other.length });
    await writeFile(path.join(changed, 'report.json'), JSON.stringify(report));
    const beforeRefusal = await snapshot(repo);
    const err = await publishApt({ repoDir: repo, outDirs: [changed], keyFile: keys.plain, logger }).catch((e: unknown) => e);
    expect(isKfarmError(err, 'PUBLISH_REFUSED'), String(err)).toBe(true);
    expect((err as Error).message).toMatch(
      new RegExp(`hello-modules-${K_NEW.replace(/[.+]/g, '\\$&')}_1\\.0\\.0_amd64\\.deb is already in the repository \\(bookworm\\) with other bytes`),
    );
    const afterRefusal = await snapshot(repo);
    afterRefusal.delete('.kfarm/lock');
    beforeRefusal.delete('.kfarm/lock');
    expect(afterRefusal).toEqual(beforeRefusal);
  }, 600_000);

  it('refuses a directory that holds something else, a bad key, or a changed package, before writing anything', async () => {
    const other = path.join(dir, 'someones-dir');
    await mkdir(other);
    await writeFile(path.join(other, 'notes.txt'), 'mine\n');
    const notRepo = await publishApt({ repoDir: other, outDirs: [outOld], keyFile: keys.plain, logger }).catch((e: unknown) => e);
    expect(isKfarmError(notRepo, 'PUBLISH_REFUSED'), String(notRepo)).toBe(true);
    expect(await readdir(other)).toEqual(['notes.txt']);

    const fresh = path.join(dir, 'repo-never');
    const badKey = await publishApt({ repoDir: fresh, outDirs: [outOld], keyFile: keys.expired, logger }).catch((e: unknown) => e);
    expect(isKfarmError(badKey, 'BAD_OPTION'), String(badKey)).toBe(true);
    await expect(stat(fresh)).rejects.toThrow(/ENOENT/);

    const changed = path.join(dir, 'out-changed');
    await cp(outOld, changed, { recursive: true });
    const deb = path.join(changed, `bmdeb/hello-modules-${K_OLD}_1.0.0_amd64.deb`);
    const data = await readFile(deb);
    data[100] = (data[100] ?? 0) ^ 1;
    await writeFile(deb, data);
    const badPackage = await publishApt({ repoDir: fresh, outDirs: [changed], keyFile: keys.plain, logger }).catch((e: unknown) => e);
    expect(isKfarmError(badPackage, 'PUBLISH_REFUSED'), String(badPackage)).toBe(true);
    expect((badPackage as Error).message).toMatch(/is not the file .*report\.json lists/);
    await expect(stat(fresh)).rejects.toThrow(/ENOENT/);

    const noDebs = path.join(dir, 'out-no-debs');
    await cp(outOld, noDebs, { recursive: true });
    const report = JSON.parse(await readFile(path.join(noDebs, 'report.json'), 'utf8')) as { packages?: unknown[] };
    await writeFile(path.join(noDebs, 'report.json'), JSON.stringify({ ...report, packages: [] }));
    const nothing = await publishApt({ repoDir: fresh, outDirs: [noDebs], keyFile: keys.plain, logger }).catch((e: unknown) => e);
    expect(isKfarmError(nothing, 'BAD_OPTION'), String(nothing)).toBe(true);
    expect((nothing as Error).message).toMatch(/lists no bmdeb or dkms-deb/);
    await expect(stat(fresh)).rejects.toThrow(/ENOENT/);
  }, 300_000);
});
