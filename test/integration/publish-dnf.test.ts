import { createHash } from 'node:crypto';
import { cp, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { packTar, type TarEntry } from '../../src/executor/archive.js';
import { ensureBaseImage } from '../../src/images/base-image.js';
import { rpmbuild, STAGE_MACRO } from '../../src/packaging/kmod-rpm/rpmbuild.js';
import { tryLockFile } from '../../src/process/file-lock.js';
import { writeChecksums } from '../../src/packaging/checksums.js';
import { readReport } from '../../src/report/read-report.js';
import { publishDnf, type DnfPublishOptions } from '../../src/publish/dnf-repo.js';
import { debian12Kernels, example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';
import { PASSPHRASE, repoTestKeys, type RepoTestKeys } from '../helpers/repo-test-key.js';
import { gunzipSync } from 'node:zlib';
import { access } from 'node:fs/promises';

/**
 * The DNF publisher end to end with the real tools: kmod and dkms RPMs of examples/hello built
 * by `kfarm build --format kmod-rpm,dkms-rpm`, published with a test key (rpmsign,
 * createrepo_c, gpg), checked by the host's rpm (-K against a database holding only that key),
 * gpgv, and Debian's dnf in a debian-12 container installing into an --installroot with
 * gpgcheck=1 and repo_gpgcheck=1.
 */
const { k61: K61, k61b: K61B } = await debian12Kernels();
const kevr = (k: string) => k.replace(/-(?=.*-)/g, '_');
const logger = pino({ level: 'silent' });
const runtime = new DockerRuntime();
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let dir: string;
let keys: RepoTestKeys;
let out61: string;
let out61b: string;
let repo: string;

const publish = (over: Partial<DnfPublishOptions> & Pick<DnfPublishOptions, 'outDirs' | 'repoDir'>) =>
  publishDnf({ key: { keyFile: keys.plain }, baseUrl: 'file:///repo', logger, ...over });

/** every file below `root` (relative path → sha256), the lock file aside */
async function snapshot(root: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const e of await readdir(root, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (!e.isFile() || e.name === '.kfarm-dnf.lock') continue;
    const abs = path.join(e.parentPath, e.name);
    files[path.relative(root, abs)] = sha(await readFile(abs));
  }
  return files;
}

async function treeEntries(root: string, prefix: string): Promise<TarEntry[]> {
  const entries: TarEntry[] = [{ path: prefix, type: 'directory', mode: 0o755 }];
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    const rel = `${prefix}/${path.relative(root, path.join(e.parentPath, e.name))}`;
    if (e.isDirectory()) entries.push({ path: rel, type: 'directory', mode: 0o755 });
    else if (e.isFile()) entries.push({ path: rel, type: 'file', mode: 0o644, data: await readFile(path.join(e.parentPath, e.name)) });
  }
  return entries.sort((a, b) => (a.path < b.path ? -1 : 1));
}

/** Debian bookworm's dnf (4.14) and rpm, on kfarm's own bookworm base, cached by content. */
async function dnfImage(): Promise<string> {
  const base = await ensureBaseImage(runtime, logger, () => undefined, 'bookworm');
  const dockerfile = Buffer.from(
    `FROM ${base}\nRUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dnf rpm && apt-get clean && rm -rf /var/lib/apt/lists/*\nLABEL io.kfarm.image=""\n`,
  );
  const ref = `kfarm-test/dnf-client:${sha(dockerfile).slice(0, 16)}`;
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

/**
 * A plain repository standing in for the distro around the module (an empty installroot has
 * none): one package that provides what the kmod RPMs require, `kernel-uname-r = <kver>` for
 * each kernel, and /bin/sh (busybox), so rpm runs the kmod packages' scriptlets for real.
 */
async function distroStubRepo(): Promise<string> {
  const stub = path.join(dir, 'stub');
  await mkdir(stub, { recursive: true });
  const built = await rpmbuild({
    spec: [
      'Name: distro-stub',
      'Version: 1',
      'Release: 1',
      'Summary: stands in for the kernel packages and a shell',
      'License: MIT',
      'AutoReqProv: no',
      ...[K61, K61B].map((k) => `Provides: kernel-uname-r = ${kevr(k)}`),
      '%description',
      'test stand-in',
      '%install',
      `cp -pR '%{${STAGE_MACRO}}/.' '%{buildroot}/'`,
      '%files',
      '/bin/sh',
      '',
    ].join('\n'),
    files: [{ path: '/bin/sh', data: await readFile('/bin/busybox'), mode: 0o755 }],
    target: 'x86_64',
    sourceDateEpoch: 946_684_800,
  });
  await writeFile(path.join(stub, built.fileName), built.data);
  await execa('createrepo_c', ['--quiet', stub]);
  return stub;
}

/** Runs `script` in the dnf container with these trees copied in (`/repo`, `/stub`, ...). */
async function inDnf(script: string, trees: Record<string, string>): Promise<{ exitCode: number; output: string }> {
  const entries = (await Promise.all(Object.entries(trees).map(([prefix, root]) => treeEntries(root, prefix)))).flat();
  return runtime.runHelper(await dnfImage(), ['bash', '-c', script], await packTar(entries));
}

/** dnf into an empty installroot, with the repository's own .repo file (gpgcheck=1, repo_gpgcheck=1) plus the stub */
const dnfInstall = (root: string, repoDir: string, pkg: string) =>
  [
    `mkdir -p /cfg-${root} && cp ${repoDir}/kfarm.repo /cfg-${root}/ && sed -i 's#file:///repo#file://${repoDir}#' /cfg-${root}/kfarm.repo`,
    `printf '[stub]\\nname=stub\\nbaseurl=file:///stub\\ngpgcheck=0\\n' > /cfg-${root}/stub.repo`,
    `dnf -y --installroot /${root} --releasever 12 --setopt=reposdir=/cfg-${root} --setopt=install_weak_deps=False install ${pkg}; echo "@@${root} $?"`,
  ].join('\n');

/** `rpm -K` against a fresh rpm database that trusts only the test key (armored from the test's own keyring, not from the repository) */
async function rpmCheck(files: string[], keyring: string): Promise<string> {
  const home = await tempDir('rpmcheck');
  const armored = await execa('gpg', ['--batch', '--no-default-keyring', '--keyring', keyring, '--armor', '--export'], { env: { GNUPGHOME: home } });
  await writeFile(path.join(home, 'key.asc'), String(armored.stdout));
  await execa('rpm', ['--dbpath', path.join(home, 'db'), '--import', path.join(home, 'key.asc')]);
  const r = await execa('rpm', ['--dbpath', path.join(home, 'db'), '-K', ...files], { reject: false, env: { LC_ALL: 'C' } });
  return String(r.stdout);
}

beforeAll(async () => {
  dir = await tempDir('publish-dnf');
  keys = await repoTestKeys();
  const env = await isolatedEnv('publish-dnf');
  out61 = path.join(dir, 'out61');
  out61b = path.join(dir, 'out61b');
  for (const [out, k] of [
    [out61, K61],
    [out61b, K61B],
  ] as const) {
    const build = await kfarm(['build', example('hello'), '--out', out, '--kernels', k, '--format', 'kmod-rpm,dkms-rpm'], env);
    expect(build.exitCode, build.stderr).toBe(0);
  }
  repo = path.join(dir, 'repo');
  await publish({ outDirs: [out61], repoDir: repo });
}, 900_000);

afterAll(async () => {
  await keys?.close();
});

describe('kfarm DNF publisher', () => {
  it('writes a signed repository: each RPM signed (rpm -K: only the repository key), repomd.xml.asc good, a .repo with both checks', async () => {
    const files = (await readdir(path.join(repo, 'Packages'))).sort();
    expect(files).toEqual(['hello-dkms-bin-1.0.0-1.noarch.rpm', `kmod-hello-${K61}-1.0.0-1.x86_64.rpm`]);
    const checked = await rpmCheck(
      files.map((f) => path.join(repo, 'Packages', f)),
      keys.keyring,
    );
    expect(checked.split('\n').map((l) => l.replace(/^.*\//, ''))).toEqual(files.map((f) => `${f}: digests signatures OK`));
    const gpgv = await execa('gpgv', ['--keyring', keys.keyring, path.join(repo, 'repodata/repomd.xml.asc'), path.join(repo, 'repodata/repomd.xml')], { reject: false });
    expect(gpgv.exitCode, String(gpgv.stderr)).toBe(0);
    const repoFile = await readFile(path.join(repo, 'kfarm.repo'), 'utf8');
    expect(repoFile).toMatch(/^gpgcheck=1$/m);
    expect(repoFile).toMatch(/^repo_gpgcheck=1$/m);
    expect(repoFile).toMatch(/^gpgkey=file:\/\/\/repo\/RPM-GPG-KEY-kfarm$/m);
    const manifest = JSON.parse(await readFile(path.join(repo, 'kfarm-dnf.json'), 'utf8')) as { packages: Array<{ file: string; sha256: string; sourceSha256: string }> };
    for (const p of manifest.packages) {
      expect(sha(await readFile(path.join(repo, p.file)))).toBe(p.sha256);
      expect(p.sourceSha256).not.toBe(p.sha256); // signed: not the build's bytes
    }
    // the signature is the repository key's: a database trusting another key says NOKEY
    const other = await tempDir('rpmdb-other');
    const r = await execa('rpm', ['--dbpath', other, '-K', path.join(repo, 'Packages', files[1]!)], { reject: false, env: { LC_ALL: 'C' } });
    expect(String(r.stdout)).toMatch(/SIGNATURES NOT OK/);
  });

  it("Debian's dnf (debian-12, --installroot, gpgcheck=1, repo_gpgcheck=1) imports the key and installs kmod-hello-<kernel>; a tampered RPM or repomd.xml is refused", async () => {
    const tampered = path.join(dir, 'tampered-rpm');
    await cp(repo, tampered, { recursive: true });
    const kmodFile = path.join(tampered, 'Packages', `kmod-hello-${K61}-1.0.0-1.x86_64.rpm`);
    const bytes = await readFile(kmodFile);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 100) ^ 0x01, bytes.length - 100); // one byte of the payload
    await writeFile(kmodFile, bytes);
    expect(await rpmCheck([kmodFile], keys.keyring)).toMatch(/NOT OK/);
    // the same RPM behind metadata that matches it, re-signed with the repository key: only the
    // package's own signature (dnf's gpgcheck) stands between the client and the changed bytes
    const badSig = path.join(dir, 'tampered-resigned');
    await cp(tampered, badSig, { recursive: true });
    await execa('createrepo_c', ['--quiet', '--no-database', badSig]);
    const home = await tempDir('resign');
    await execa('gpg', ['--batch', '--import', keys.plain], { env: { GNUPGHOME: home } });
    await execa('gpg', ['--batch', '--yes', '--armor', '--detach-sign', '--output', path.join(badSig, 'repodata/repomd.xml.asc'), path.join(badSig, 'repodata/repomd.xml')], {
      env: { GNUPGHOME: home },
    });
    await execa('gpgconf', ['--kill', 'gpg-agent'], { env: { GNUPGHOME: home }, reject: false });
    const badIndex = path.join(dir, 'tampered-repomd');
    await cp(repo, badIndex, { recursive: true });
    const repomd = path.join(badIndex, 'repodata/repomd.xml');
    await writeFile(
      repomd,
      (await readFile(repomd, 'utf8')).replace(/<revision>(\d)/, (_m, d: string) => `<revision>${(Number(d) + 1) % 10}`),
    );
    const r = await inDnf(
      [
        dnfInstall('good', '/repo', `kmod-hello-${K61}`),
        `rpm --root /good -q kmod-hello-${K61}; echo "@@q $?"`,
        `sha256sum /good/usr/lib/modules/${K61}/extra/hello/hello.ko`,
        dnfInstall('bad-rpm', '/tampered-rpm', `kmod-hello-${K61}`),
        dnfInstall('bad-sig', '/tampered-resigned', `kmod-hello-${K61}`),
        dnfInstall('bad-index', '/tampered-repomd', `kmod-hello-${K61}`),
        `for r in bad-rpm bad-sig bad-index; do rpm --root /$r -q kmod-hello-${K61}; done; echo "@@absent"`,
      ].join('\n'),
      { repo, stub: await distroStubRepo(), 'tampered-rpm': tampered, 'tampered-resigned': badSig, 'tampered-repomd': badIndex },
    );
    expect(r.output).toMatch(/Importing GPG key 0x[0-9A-F]{8}:\n Userid {5}: "kfarm test repo plain/);
    await writeFile(path.join(dir, 'dnf-output.txt'), r.output);
    expect(r.output).toMatch(/^@@good 0$/m);
    expect(r.output).toMatch(new RegExp(`^kmod-hello-${K61.replace(/[.+]/g, '\\$&')}-1\\.0\\.0-1\\.x86_64\\n@@q 0$`, 'm'));
    const report = JSON.parse(await readFile(path.join(out61, 'report.json'), 'utf8')) as { kernels: Array<{ modules: Array<{ sha256: string }> }> };
    expect(r.output).toContain(`${report.kernels[0]!.modules[0]!.sha256}  /good/usr/lib/modules/${K61}/extra/hello/hello.ko`);
    // changed bytes, old metadata: the repository's checksum refuses it
    expect(r.output).toMatch(/^@@bad-rpm 1$/m);
    expect(r.output).toMatch(/kmod-hello-\S+" from local repository "kfarm" has incorrect checksum/);
    // changed bytes, matching signed metadata: the package's signature check refuses it
    expect(r.output).toMatch(/Problem opening package kmod-hello-\S+\nError: GPG check FAILED\n@@bad-sig 1$/m);
    // a changed repomd.xml: repo_gpgcheck refuses the repository
    expect(r.output).toMatch(/^@@bad-index 1$/m);
    expect(r.output).toMatch(/repomd\.xml GPG signature verification error: Bad GPG signature/);
    expect(r.output).toMatch(/(package kmod-hello-\S+ is not installed\n){3}@@absent/);
  }, 600_000);

  it("publishing a new kernel's build adds its package and leaves every other package's bytes as they were; the same out dir again adds nothing", async () => {
    const before = await snapshot(path.join(repo, 'Packages'));
    const added = await publish({ outDirs: [out61b], repoDir: repo });
    expect(added.added).toEqual([`Packages/kmod-hello-${K61B}-1.0.0-1.x86_64.rpm`]);
    // hello's dkms RPM of 1.0.0 carries the kernels of the build that made it: the published one stays
    expect(added.plan.held.map((c) => c.source)).toEqual([path.join(out61b, 'dkms-rpm/hello-dkms-bin-1.0.0-1.noarch.rpm')]);
    expect(added.plan.unchanged).toEqual([]);
    const after = await snapshot(path.join(repo, 'Packages'));
    for (const [f, h] of Object.entries(before)) expect(after[f], f).toBe(h);
    expect(Object.keys(after).sort()).toEqual([...Object.keys(before), `kmod-hello-${K61B}-1.0.0-1.x86_64.rpm`].sort());
    const primary = (await readdir(path.join(repo, 'repodata'))).find((f) => f.endsWith('-primary.xml.gz'));
    expect(primary).toBeDefined();
    const again = await publish({ outDirs: [out61, out61b], repoDir: repo });
    expect(again.added).toEqual([]);
    expect(await snapshot(path.join(repo, 'Packages'))).toEqual(after);
  }, 300_000);

  it('refuses a package version published with other bytes (repacked with another SOURCE_DATE_EPOCH): nothing changes', async () => {
    const other = path.join(dir, 'repacked');
    await cp(out61, other, { recursive: true });
    const pack = await kfarm(['pack', other, '--format', 'kmod-rpm,dkms-rpm'], { ...(await isolatedEnv('publish-dnf-pack')), SOURCE_DATE_EPOCH: '1234567890' });
    expect(pack.exitCode, pack.stderr).toBe(0);
    const before = await snapshot(repo);
    await expect(publish({ outDirs: [other], repoDir: repo })).rejects.toThrow(
      /refused to publish: 1 package would change a published version: kmod-hello-\S+ \(\S+\) is published already with other bytes/,
    );
    expect(await snapshot(repo)).toEqual(before);
  }, 300_000);

  it('refuses a directory that is not a kfarm repository, and changes nothing in it', async () => {
    const foreign = path.join(dir, 'foreign');
    await mkdir(path.join(foreign, 'repodata'), { recursive: true });
    await writeFile(path.join(foreign, 'repodata', 'repomd.xml'), '<repomd/>');
    await writeFile(path.join(foreign, 'notes.txt'), 'mine');
    const before = await snapshot(foreign);
    await expect(publish({ outDirs: [out61], repoDir: foreign })).rejects.toThrow(
      /is not a kfarm DNF repository: it holds 2 entries \(.*\) and no kfarm-dnf\.json; nothing was changed/,
    );
    expect(await snapshot(foreign)).toEqual(before);
    expect((await readdir(foreign)).sort()).toEqual(['notes.txt', 'repodata']);
  });

  it('refuses an out dir whose RPM changed (against report.json, SHA256SUMS, its header), and a key that cannot sign, before anything is written', async () => {
    const changed = path.join(dir, 'changed');
    await cp(out61, changed, { recursive: true });
    const file = path.join(changed, 'kmod-rpm', `kmod-hello-${K61}-1.0.0-1.x86_64.rpm`);
    const bytes = await readFile(file);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0x01, bytes.length - 1);
    await writeFile(file, bytes);
    const fresh = path.join(dir, 'fresh');
    await expect(publish({ outDirs: [changed], repoDir: fresh })).rejects.toThrow(/kmod-rpm\/kmod-hello-.* does not match the sha256 report\.json gives; nothing was published/);
    await expect(publish({ outDirs: [out61], repoDir: fresh, key: { keyFile: keys.publicOnly } })).rejects.toThrow(/cannot sign: it holds no secret key/);
    // SHA256SUMS that disagrees with report.json
    const sums = path.join(dir, 'sums');
    await cp(out61, sums, { recursive: true });
    const sumsFile = path.join(sums, 'SHA256SUMS');
    await writeFile(sumsFile, (await readFile(sumsFile, 'utf8')).replace(/^[0-9a-f]{64}(?= {2}kmod-rpm\/)/m, 'f'.repeat(64)));
    await expect(publish({ outDirs: [sums], repoDir: fresh })).rejects.toThrow(/kmod-rpm\/kmod-hello-\S+ does not match the sha256 SHA256SUMS gives; nothing was published/);
    // another package under the kmod package's name, report.json and SHA256SUMS made to agree: its header tells
    const swapped = path.join(dir, 'swapped');
    await cp(out61, swapped, { recursive: true });
    const kmodRel = `kmod-rpm/kmod-hello-${K61}-1.0.0-1.x86_64.rpm`;
    const dkmsBytes = await readFile(path.join(swapped, 'dkms-rpm/hello-dkms-bin-1.0.0-1.noarch.rpm'));
    await writeFile(path.join(swapped, kmodRel), dkmsBytes);
    const report = await readReport(swapped);
    report.packages = report.packages!.map((p) => (p.path === kmodRel ? { ...p, sha256: sha(dkmsBytes), size: dkmsBytes.length } : p));
    await writeFile(path.join(swapped, 'report.json'), JSON.stringify(report));
    await writeChecksums(swapped, report);
    await expect(publish({ outDirs: [swapped], repoDir: fresh })).rejects.toThrow(
      /kmod-hello-\S+\.rpm is hello-dkms-bin-1\.0\.0-1\.noarch inside, not kmod-hello-\S+-1\.0\.0-1\.x86_64; nothing was published/,
    );
    await expect(stat(fresh)).rejects.toThrow(/ENOENT/);
  });

  it("waits for the repository's lock: while another holder keeps it, a publish times out and changes nothing", async () => {
    const held = await tryLockFile(path.join(repo, '.kfarm-dnf.lock'), 'test');
    expect(held).toBeDefined();
    const before = await snapshot(repo);
    try {
      await expect(publish({ outDirs: [out61], repoDir: repo, lockTimeoutMs: 1500 })).rejects.toThrow(/stayed locked by another publish \(pid test\)/);
    } finally {
      await held?.release();
    }
    expect(await snapshot(repo)).toEqual(before);
    await publish({ outDirs: [out61], repoDir: repo }); // and goes ahead once it is free
  });

  it('keep: 1 takes an older module version out of the index, and its files out of Packages/ one publish later', async () => {
    const src = path.join(dir, 'hello-1.1.0');
    await cp(example('hello'), src, { recursive: true });
    const conf = path.join(src, 'dkms.conf');
    await writeFile(conf, (await readFile(conf, 'utf8')).replace('PACKAGE_VERSION="1.0.0"', 'PACKAGE_VERSION="1.1.0"'));
    const out110 = path.join(dir, 'out110');
    const build = await kfarm(['build', src, '--out', out110, '--kernels', K61, '--format', 'kmod-rpm,dkms-rpm'], await isolatedEnv('publish-dnf-110'));
    expect(build.exitCode, build.stderr).toBe(0);
    const kept = path.join(dir, 'kept');
    await publish({ outDirs: [out61, out61b], repoDir: kept });
    const newer = await publish({ outDirs: [out110], repoDir: kept, keep: 1 });
    const v100 = ['Packages/hello-dkms-bin-1.0.0-1.noarch.rpm', `Packages/kmod-hello-${K61}-1.0.0-1.x86_64.rpm`, `Packages/kmod-hello-${K61B}-1.0.0-1.x86_64.rpm`].sort();
    const v110 = ['Packages/hello-dkms-bin-1.1.0-1.noarch.rpm', `Packages/kmod-hello-${K61}-1.1.0-1.x86_64.rpm`];
    expect(newer.added).toEqual(v110);
    expect(newer.plan.remove.map((p) => p.file)).toEqual(v100);
    expect((await indexedFiles(kept)).filter((f) => f.startsWith('Packages/')).sort()).toEqual(v110);
    // still there for a reader of the index before: deleted by the next publish
    expect(newer.removed).toEqual([]);
    for (const f of v100) await access(path.join(kept, f));
    const next = await publish({ outDirs: [out110], repoDir: kept, keep: 1 });
    expect(next.added).toEqual([]);
    expect(next.removed.sort()).toEqual(v100);
    expect((await readdir(path.join(kept, 'Packages'))).sort()).toEqual(v110.map((f) => path.basename(f)).sort());
    // an older version given again with keep: 1 is not added
    const older = await publish({ outDirs: [out61], repoDir: kept, keep: 1 });
    expect(older.added).toEqual([]);
    expect(older.plan.skipped.map((c) => c.moduleVersion)).toEqual(['1.0.0', '1.0.0']);
  }, 300_000);

  it('two publishes at once to one repository run one after the other: both land, the index names both', async () => {
    const both = path.join(dir, 'both');
    const [a, b] = await Promise.all([publish({ outDirs: [out61], repoDir: both }), publish({ outDirs: [out61b], repoDir: both })]);
    expect([...a.added, ...b.added].filter((f) => f.includes('kmod-')).sort()).toEqual(
      [`Packages/kmod-hello-${K61}-1.0.0-1.x86_64.rpm`, `Packages/kmod-hello-${K61B}-1.0.0-1.x86_64.rpm`].sort(),
    );
    const names = (await indexedFiles(both)).filter((f) => f.startsWith('Packages/'));
    expect(names.filter((f) => f.includes('kmod-')).sort()).toEqual([`Packages/kmod-hello-${K61}-1.0.0-1.x86_64.rpm`, `Packages/kmod-hello-${K61B}-1.0.0-1.x86_64.rpm`].sort());
    const manifest = JSON.parse(await readFile(path.join(both, 'kfarm-dnf.json'), 'utf8')) as { packages: Array<{ file: string }> };
    expect(manifest.packages.map((p) => p.file).sort()).toEqual([...names].sort());
  }, 120_000);

  it('a reader polling during a publish never sees an index that names a file not there', async () => {
    const polled = path.join(dir, 'polled');
    await publish({ outDirs: [out61], repoDir: polled });
    let done = false;
    let reads = 0;
    const missing: string[] = [];
    const reader = (async () => {
      while (!done) {
        const names = await indexedFiles(polled).catch((err: unknown) => [`(unreadable index: ${String(err)})`]);
        for (const f of names)
          if (
            !(await access(path.join(polled, f)).then(
              () => true,
              () => false,
            ))
          )
            missing.push(f);
        reads++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    await publish({ outDirs: [out61b], repoDir: polled });
    done = true;
    await reader;
    expect(missing).toEqual([]);
    expect(reads).toBeGreaterThan(5);
    expect(await indexedFiles(polled)).toContain(`Packages/kmod-hello-${K61B}-1.0.0-1.x86_64.rpm`);
  }, 120_000);

  it("signs with a passphrase-protected key (the passphrase reaches gpg from a file in the key's own home)", async () => {
    const protectedRepo = path.join(dir, 'protected');
    await publish({ outDirs: [out61], repoDir: protectedRepo, key: { keyFile: keys.protected, passphrase: PASSPHRASE } });
    const pkgs = (await readdir(path.join(protectedRepo, 'Packages'))).map((f) => path.join(protectedRepo, 'Packages', f));
    const home = await tempDir('protected-check');
    await execa('rpm', ['--dbpath', path.join(home, 'db'), '--import', path.join(protectedRepo, 'RPM-GPG-KEY-kfarm')]);
    const r = await execa('rpm', ['--dbpath', path.join(home, 'db'), '-K', ...pkgs], { reject: false, env: { LC_ALL: 'C' } });
    expect(
      String(r.stdout)
        .split('\n')
        .map((l) => l.replace(/^.*: /, '')),
    ).toEqual(pkgs.map(() => 'digests signatures OK'));
    await expect(publish({ outDirs: [out61], repoDir: path.join(dir, 'wrong-pass'), key: { keyFile: keys.protected, passphrase: 'wrong' } })).rejects.toThrow(
      /passphrase is wrong or missing/,
    );
  }, 120_000);
});

/** every file the repository's current index names: repomd.xml's data files (repodata/...), and primary's packages (Packages/...) */
async function indexedFiles(root: string): Promise<string[]> {
  const repomd = await readFile(path.join(root, 'repodata/repomd.xml'), 'utf8');
  const data = [...repomd.matchAll(/<location href="(repodata\/[^"]+)"/g)].map((m) => m[1]!);
  const primary = data.find((f) => f.endsWith('-primary.xml.gz'));
  if (!primary) throw new Error('no primary in repomd.xml');
  const xml = gunzipSync(await readFile(path.join(root, primary))).toString('utf8');
  return [...data, ...[...xml.matchAll(/<location href="([^"]+)"/g)].map((m) => m[1]!)];
}
