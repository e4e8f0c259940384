import { createHash } from 'node:crypto';
import { cp, lstat, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { extractTar, type TarEntry } from '../../src/executor/archive.js';
import type { BuildReport } from '../../src/report/report.js';
import type { SigningReport } from '../../src/report/signing-report.js';
import { parseModuleSignature, verifyPkcs7 } from '../../src/signing/index.js';
import { runOracle } from '../helpers/dkms-oracle.js';
import { debian12Kernels, example, fixture, isolatedEnv, kfarm, kfarmProcess, tempDir } from '../helpers/kfarm-cli.js';
import { MODULE_FILE, moduleEntry, plainModule } from '../helpers/module-files.js';
import { addEcKey, makeTestToken, type TestToken } from '../helpers/softhsm.js';
import { unpackAll } from '../helpers/unpack-all.js';
import { makeSigningKey } from '../helpers/signing-key.js';

/**
 * `kfarm sign <out-dir>`: an unsigned build of hello (6.1: .ko, 6.12: .ko.xz, with bmdeb and
 * kmod-rpm packages) signed afterwards, with a key file and with a key in SoftHSM2. Every
 * module is signed (modinfo, openssl cms), the tarballs and packages hold the signed modules,
 * Debian's dkms ingests the signed tarballs, SHA256SUMS holds and lists the enrolment files,
 * and a sign that fails (bad key input, a failure half way, Ctrl-C) leaves the out dir as it was.
 */
let env: Record<string, string>;
let dir: string;
let unsigned: string;
let K61 = '';
let K612 = '';
let token: TestToken;
let copies = 0;

type ReportWithSigning = BuildReport & { signing?: SigningReport };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const readReportJson = async (out: string) => JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as ReportWithSigning;

async function makeKey(name: string, newkey?: string[]): Promise<{ key: string; cert: string }> {
  return makeSigningKey(dir, name, `kfarm sign ${name}`, newkey);
}

/** a fresh copy of the unsigned out dir (timestamps kept) */
async function copyOut(name: string): Promise<string> {
  const out = path.join(dir, `${name}-${copies++}`);
  await cp(unsigned, out, { recursive: true, preserveTimestamps: true });
  return out;
}

/** Every entry under the out dir, hidden ones too: type, and for files their bytes' sha256, size, mode and mtime. */
async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    const file = path.join(e.parentPath, e.name);
    const info = await lstat(file);
    out[path.relative(root, file)] = e.isFile() ? `file ${sha(await readFile(file))} ${info.size} ${info.mode} ${info.mtimeMs}` : e.isDirectory() ? 'dir' : 'other';
  }
  return out;
}

const tarEntries = async (file: string): Promise<TarEntry[]> => extractTar(gunzipSync(await readFile(file)), { maxBytes: 1 << 28, maxEntries: 10_000, allowSymlinks: true }, file);

/** Each built kernel's hello module as its binaries-only tarball holds it. */
async function tarballModules(out: string): Promise<Array<{ kernel: string; file: string; data: Buffer; reported: string }>> {
  const report = await readReportJson(out);
  const found = [];
  for (const k of report.kernels) {
    const entry = moduleEntry(await tarEntries(path.join(out, k.tarball?.path ?? 'missing')), k.kernel, 'x86_64', 'hello');
    if (!entry?.data) throw new Error(`no hello module in ${k.kernel}'s tarball`);
    found.push({ kernel: k.kernel, file: path.basename(entry.path), data: entry.data, reported: k.modules[0]?.sha256 ?? '' });
  }
  return found;
}

async function modinfo(data: Buffer, fileName: string, field: string): Promise<string> {
  const file = path.join(dir, `modinfo-${copies++}-${fileName}`);
  await writeFile(file, data);
  return (await execa('modinfo', ['-F', field, file])).stdout.trim();
}

/** every hello module inside the out dir's packages of one format, opened (deb, rpm) */
async function packagedModules(out: string, format: string): Promise<string[]> {
  const unpacked = await unpackAll(path.join(out, format), await tempDir(`sign-${format}`));
  return unpacked.files.filter((f) => /(^|\/)hello\.ko(\.xz)?$/.test(f) && MODULE_FILE.test(f));
}

/** `kfarm build --sign-key` of the same hello and kernels, from the cache (nothing compiled again), with bmdeb */
async function builtWith(key: { key: string; cert: string }): Promise<string> {
  const out = path.join(dir, `built-${copies++}`);
  const build = await kfarm(['build', example('hello'), '--out', out, '--kernels', `${K61},${K612}`, '--format', 'bmdeb', '--sign-key', key.key, '--sign-cert', key.cert], env);
  expect(build.exitCode, build.stderr).toBe(0);
  return out;
}

const sums = async (out: string) => {
  const check = await execa('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: out, reject: false });
  const listed = (await readFile(path.join(out, 'SHA256SUMS'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => l.split('  ')[1] ?? '');
  return { ok: check.exitCode === 0, output: check.stdout + check.stderr, listed };
};

beforeAll(async () => {
  env = await isolatedEnv('sign-out-dir');
  dir = await tempDir('sign-out-dir');
  ({ k61: K61, k612: K612 } = await debian12Kernels());
  unsigned = path.join(dir, 'unsigned');
  const built = await kfarm(['build', example('hello'), '--out', unsigned, '--kernels', `${K61},${K612}`, '--format', 'bmdeb,kmod-rpm'], env);
  expect(built.exitCode, built.stderr).toBe(0);
  token = await makeTestToken(path.join(dir, 'token'));
}, 900_000);

describe('kfarm sign <out-dir> with a key file', () => {
  let key: { key: string; cert: string };
  let signedOut: string;

  it('signs every module of the tarballs and packages; report.json, SHA256SUMS and the enrolment files follow; the logs stay', async () => {
    key = await makeKey('file');
    const out = await copyOut('file');
    signedOut = out;
    const before = await tarballModules(out);
    expect(before.map((m) => m.file).sort()).toEqual(['hello.ko', 'hello.ko.xz']);
    for (const m of before) expect(parseModuleSignature(await plainModule(m.data, m.file)), m.kernel).toBeUndefined();
    const logsBefore = await snapshot(path.join(out, 'logs'));
    const fullBefore = await tarEntries(path.join(out, (await readReportJson(out)).fullTarball?.path ?? 'missing'));

    const run = await kfarm(['sign', out, '--sign-key', key.key, '--sign-cert', key.cert], env);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toContain('2 module(s) for 2 kernel(s)');
    expect(run.stdout).toContain('signed by CN=kfarm sign file');
    expect(run.stdout).toContain('packed again: bmdeb, kmod-rpm');

    const certPem = await readFile(key.cert);
    const after = await tarballModules(out);
    for (const [i, m] of after.entries()) {
      expect(await modinfo(m.data, m.file, 'signer'), m.kernel).toBe('kfarm sign file');
      expect(await modinfo(m.data, m.file, 'sig_hashalgo')).toBe('sha256');
      const signature = parseModuleSignature(await plainModule(m.data, m.file));
      // the module's own bytes unchanged, a signature the real openssl verifies appended
      expect(signature?.content.equals(await plainModule(before[i]!.data, before[i]!.file)), m.kernel).toBe(true);
      expect((await verifyPkcs7(signature!.content, signature!.pkcs7, certPem)).ok).toBe(true);
      expect(m.reported, 'report.json names the signed bytes').toBe(sha(m.data));
    }
    // the full tarball: both kernels signed, the source as it was
    const report = await readReportJson(out);
    const full = await tarEntries(path.join(out, report.fullTarball?.path ?? 'missing'));
    for (const k of [K61, K612]) {
      const m = moduleEntry(full, k, 'x86_64', 'hello');
      expect(await modinfo(m!.data!, path.basename(m!.path), 'signer')).toBe('kfarm sign file');
    }
    const source = (entries: TarEntry[]) => entries.filter((e) => e.path.startsWith('dkms_source_tree')).map((e) => [e.path, e.type, e.mode, e.data ? sha(e.data) : '']);
    expect(source(full)).toEqual(source(fullBefore));
    expect(source(full).length).toBeGreaterThan(2);
    // the packages, made again from the signed modules
    for (const format of ['bmdeb', 'kmod-rpm']) {
      const files = await packagedModules(out, format);
      expect(files.length, format).toBe(2);
      for (const f of files)
        expect(await modinfo(await plainModule(await readFile(f), f), path.basename(f).replace(/\.xz$/, ''), 'signer'), `${format} ${f}`).toBe('kfarm sign file');
    }
    // the enrolment files, in report.json and SHA256SUMS, which holds
    expect(report.signing?.subject).toBe('CN=kfarm sign file');
    expect(report.signing?.files.map((f) => f.path)).toEqual(['signing-cert.der', 'ENROLL.md']);
    const der = Buffer.from((await execa('openssl', ['x509', '-in', key.cert, '-outform', 'DER'], { encoding: 'buffer', stripFinalNewline: false })).stdout);
    expect((await readFile(path.join(out, 'signing-cert.der'))).equals(der)).toBe(true);
    const checked = await sums(out);
    expect(checked.ok, checked.output).toBe(true);
    expect(checked.listed).toEqual(expect.arrayContaining(['ENROLL.md', 'signing-cert.der', 'report.json', report.fullTarball!.path, ...report.packages!.map((p) => p.path)]));
    expect(report.packages!.length).toBe(4);
    expect(await snapshot(path.join(out, 'logs'))).toEqual(logsBefore);
  }, 600_000);

  it("Debian's dkms ingests the signed tarballs (per kernel and full) and installs the signed module", async () => {
    const report = await readReportJson(signedOut);
    const k612 = report.kernels.find((k) => k.kernel === K612)!;
    const name = k612.tarball!.path;
    const oracle = await runOracle(
      [
        `echo 'kernel/fs/dummy.ko.xz:' > /lib/modules/${K612}/modules.dep`,
        // dkms 3.0.10 exits 1 after loading a binaries-only tarball without /usr/src/<m>-<v> (upstream #362): status shows the load
        `dkms ldtarball /in/${name}; echo "ldtarball=$?"`,
        'dkms status',
        `dkms install -m hello -v 1.0.0 -k ${K612} && echo INSTALL_OK`,
        `modinfo -F signer /lib/modules/${K612}/updates/dkms/hello.ko.xz`,
      ].join('\n'),
      { [name]: await readFile(path.join(signedOut, name)) },
    );
    expect(oracle.output).toMatch(/ldtarball=[01]/);
    expect(oracle.output).toContain(`hello/1.0.0, ${K612}, x86_64: built`);
    expect(oracle.output, oracle.output).toContain('INSTALL_OK');
    expect(oracle.output).toContain('kfarm sign file');

    const full = report.fullTarball!.path;
    const loaded = await runOracle(
      [
        `dkms ldtarball /in/${full} && echo LOAD_OK`,
        'dkms status',
        `dkms install -m hello -v 1.0.0 -k ${K61} && echo INSTALL_OK`,
        `modinfo -F signer /lib/modules/${K61}/updates/dkms/hello.ko`,
      ].join('\n'),
      { [full]: await readFile(path.join(signedOut, full)) },
    );
    expect(loaded.output, loaded.output).toContain('LOAD_OK');
    expect(loaded.output).toContain(`hello/1.0.0, ${K61}, x86_64: built`);
    expect(loaded.output).toContain('INSTALL_OK');
    expect(loaded.output).toContain('kfarm sign file');
  }, 600_000);

  it('kfarm build --sign-key lists signing-cert.der and ENROLL.md in SHA256SUMS (report.json names them), and sha256sum -c passes', async () => {
    const out = await builtWith(await makeKey('built'));
    const checked = await sums(out);
    expect(checked.ok, checked.output).toBe(true);
    expect(checked.listed).toEqual(expect.arrayContaining(['ENROLL.md', 'signing-cert.der']));
    expect((await readReportJson(out)).signing?.subject).toBe('CN=kfarm sign built');
  }, 600_000);

  it('signed again with another key: the old signature is replaced, the same bytes as signing the unsigned build, and as kfarm build --sign-key writes', async () => {
    const other = await makeKey('other');
    const twice = path.join(dir, `twice-${copies++}`);
    await cp(signedOut, twice, { recursive: true, preserveTimestamps: true });
    const again = await kfarm(['sign', twice, '--sign-key', other.key, '--sign-cert', other.cert], env);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toContain('2 module(s) were signed already: that signature was replaced');
    const once = await copyOut('once');
    const direct = await kfarm(['sign', once, '--sign-key', other.key, '--sign-cert', other.cert], env);
    expect(direct.exitCode, direct.stderr).toBe(0);
    expect(direct.stdout).not.toContain('signed already');
    const a = await tarballModules(twice);
    const b = await tarballModules(once);
    expect(a.map((m) => sha(m.data))).toEqual(b.map((m) => sha(m.data)));
    for (const m of a) expect(await modinfo(m.data, m.file, 'signer')).toBe('kfarm sign other');

    // the build's own signing (from the cache, nothing compiled again) writes these very modules
    expect((await tarballModules(await builtWith(other))).map((m) => sha(m.data))).toEqual(b.map((m) => sha(m.data)));
  }, 600_000);

  it('a failure half way (a package format this kfarm cannot make, after every module was signed) leaves the out dir byte for byte as it was', async () => {
    const out = await copyOut('halfway');
    const report = await readReportJson(out);
    report.packages = [...(report.packages ?? []), { format: 'nosuch', path: 'nosuch/x', sha256: 'e'.repeat(64), size: 1 }];
    await writeFile(path.join(out, 'report.json'), JSON.stringify(report, null, 2));
    const before = await snapshot(out);
    const run = await kfarm(['sign', out, '--sign-key', key.key, '--sign-cert', key.cert], env);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain(`signed hello.ko`); // it got that far
    expect(run.stderr).toMatch(/nosuch is not available/);
    expect(await snapshot(out)).toEqual(before);
  }, 600_000);

  it('drops the load results of an earlier kfarm verify: they were for the unsigned bytes', async () => {
    const out = await copyOut('loaded');
    const report = await readReportJson(out);
    for (const k of report.kernels) k.load = { verdict: 'loaded', accel: 'tcg', bootMs: 1000, loadMs: 10 };
    await writeFile(path.join(out, 'report.json'), JSON.stringify(report, null, 2));
    const run = await kfarm(['sign', out, '--sign-key', key.key, '--sign-cert', key.cert], env);
    expect(run.exitCode, run.stderr).toBe(0);
    expect((await readReportJson(out)).kernels.map((k) => k.load)).toEqual([undefined, undefined]);
  }, 600_000);

  it('Ctrl-C while signing: exit 130, the out dir byte for byte as it was, no signer container left', async () => {
    const out = await copyOut('interrupt');
    const before = await snapshot(out);
    const proc = kfarmProcess(['sign', out, '--sign-key', key.key, '--sign-cert', key.cert], env);
    let stderr = '';
    let sent = false;
    proc.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      // the first kernel signed and staged: the second is in its container now
      if (!sent && /: signed hello/.test(stderr)) {
        sent = true;
        proc.kill('SIGINT');
      }
    });
    const ended = await proc;
    expect(sent, stderr).toBe(true);
    expect(ended.exitCode, stderr).toBe(130);
    expect(await snapshot(out)).toEqual(before);
    const left = await execa('docker', ['ps', '-aq', '--filter', `label=kfarm.pid=${proc.pid ?? -1}`]);
    expect(left.stdout.trim()).toBe('');
  }, 600_000);
});

describe('kfarm sign <out-dir> of a build of several sources', () => {
  it("signs each module's built kernels (an excluded row left as it is), each module's tarballs again; SHA256SUMS holds", async () => {
    const out = path.join(dir, `several-${copies++}`);
    const built = await kfarm(['build', example('hello'), fixture('exclusive-61'), '--out', out, '--kernels', `${K61},${K612}`], env);
    expect(built.exitCode, built.stderr).toBe(0);
    const key = await makeKey('several');
    const run = await kfarm(['sign', out, '--sign-key', key.key, '--sign-cert', key.cert], env);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toContain('3 module(s) for 3 kernel(s)');
    const report = await readReportJson(out);
    expect(report.kernels.map((k) => `${k.module ?? ''} ${k.kernel} ${k.verdict}`).sort()).toEqual(
      [`hello ${K61} built`, `hello ${K612} built`, `only61 ${K61} built`, `only61 ${K612} excluded`].sort(),
    );
    for (const k of report.kernels.filter((r) => r.verdict === 'built')) {
      const name = k.module === 'only61' ? 'only61' : 'hello';
      const tarball = moduleEntry(await tarEntries(path.join(out, k.tarball!.path)), k.kernel, 'x86_64', name);
      expect(await modinfo(tarball!.data!, path.basename(tarball!.path), 'signer'), `${name} ${k.kernel}`).toBe('kfarm sign several');
      expect(sha(tarball!.data!)).toBe(k.modules[0]?.sha256);
    }
    for (const m of report.modules ?? []) {
      const full = await tarEntries(path.join(out, m.fullTarball!.path));
      const kernels = m.name === 'only61' ? [K61] : [K61, K612];
      for (const k of kernels) {
        const e = moduleEntry(full, k, 'x86_64', m.name);
        expect(await modinfo(e!.data!, path.basename(e!.path), 'signer'), `${m.name} full ${k}`).toBe('kfarm sign several');
      }
    }
    const checked = await sums(out);
    expect(checked.ok, checked.output).toBe(true);
    expect(checked.listed).toEqual(expect.arrayContaining(['hello-1.0.0.dkms.tar.gz', 'only61-2.0.dkms.tar.gz', 'signing-cert.der']));
  }, 900_000);
});

describe('kfarm sign <out-dir> with a key in a token (SoftHSM2)', () => {
  const uri = () => `pkcs11:token=${token.label};object=modsign`;

  it('signs every module through the token; SHA256SUMS holds; a package module is signed', async () => {
    const out = await copyOut('token');
    const run = await kfarm(['sign', out, '--sign-key', uri(), '--sign-cert', token.certPath], { ...env, ...token.env, KFARM_PKCS11_PIN: token.pin });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout + run.stderr).not.toContain(token.pin);
    const certPem = await readFile(token.certPath);
    for (const m of await tarballModules(out)) {
      expect(await modinfo(m.data, m.file, 'signer'), m.kernel).toBe('kfarm token key');
      const signature = parseModuleSignature(await plainModule(m.data, m.file));
      expect((await verifyPkcs7(signature!.content, signature!.pkcs7, certPem)).ok).toBe(true);
    }
    const files = await packagedModules(out, 'bmdeb');
    expect(files.length).toBe(2);
    for (const f of files) expect(await modinfo(await plainModule(await readFile(f), f), path.basename(f).replace(/\.xz$/, ''), 'signer')).toBe('kfarm token key');
    const checked = await sums(out);
    expect(checked.ok, checked.output).toBe(true);
    expect(checked.listed).toEqual(expect.arrayContaining(['ENROLL.md', 'signing-cert.der']));
  }, 600_000);

  it('refuses, exit 2, the out dir byte for byte as it was: a wrong PIN, no PIN, a URI matching no key or two, a certificate of another key', async () => {
    const out = await copyOut('token-bad');
    const before = await snapshot(out);
    const other = await makeKey('not-the-token');
    const cases: Array<[string, string[], Record<string, string>, RegExp]> = [
      ['wrong PIN', ['--sign-key', uri(), '--sign-cert', token.certPath], { KFARM_PKCS11_PIN: '0000' }, /the token refused the PIN/],
      ['no PIN', ['--sign-key', uri(), '--sign-cert', token.certPath], {}, /no PIN for the token[\s\S]*KFARM_PKCS11_PIN/],
      [
        'no key',
        ['--sign-key', `pkcs11:token=${token.label};object=nosuchkey`, '--sign-cert', token.certPath],
        { KFARM_PKCS11_PIN: token.pin },
        /no private key in the token kfarm-test matches/,
      ],
      [
        'two keys',
        ['--sign-key', `pkcs11:token=${token.label};object=twin`, '--sign-cert', token.certPath],
        { KFARM_PKCS11_PIN: token.pin },
        /2 private keys in the token kfarm-test match[\s\S]*id=/,
      ],
      ['another cert', ['--sign-key', uri(), '--sign-cert', other.cert], { KFARM_PKCS11_PIN: token.pin }, /does not match the token's key/],
    ];
    for (const [what, args, extra, message] of cases) {
      const run = await kfarm(['sign', out, ...args], { ...env, ...token.env, ...extra });
      expect(run.exitCode, `${what}: ${run.stderr}`).toBe(2);
      expect(run.stderr, what).toMatch(message);
      expect(await snapshot(out), what).toEqual(before);
    }
  }, 600_000);
});

describe('ECDSA keys (P-256, P-384): only for kernels that verify them', () => {
  it('a kernel built without CONFIG_CRYPTO_ECDSA (Debian 12 6.1) is refused, named, the out dir as it was; 6.12 is signed (key file P-384, token P-256) and verifies', async () => {
    const ec384 = await makeKey('ec384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']);
    const both = await copyOut('ec-both');
    const before = await snapshot(both);
    const refused = await kfarm(['sign', both, '--sign-key', ec384.key, '--sign-cert', ec384.cert], env);
    expect(refused.exitCode, refused.stderr).toBe(2);
    expect(refused.stderr).toContain(`an ECDSA P-384 key, but ${K61} cannot verify ECDSA module signatures (CONFIG_CRYPTO_ECDSA is not set)`);
    expect(await snapshot(both)).toEqual(before);

    // 6.12 alone (its result from the cache): signed with the file and through the token
    const only612 = path.join(dir, `only612-${copies++}`);
    const built = await kfarm(['build', example('hello'), '--out', only612, '--kernels', K612], env);
    expect(built.exitCode, built.stderr).toBe(0);
    const tokenCert = await addEcKey(token, path.join(dir, 'token'), 'ecsign', 'prime256v1');
    const cases: Array<[string, string, string, Record<string, string>, string]> = [
      ['file P-384', ec384.key, ec384.cert, {}, 'kfarm sign ec384'],
      ['token P-256', `pkcs11:token=${token.label};object=ecsign`, tokenCert, { ...token.env, KFARM_PKCS11_PIN: token.pin }, 'kfarm token ecsign'],
    ];
    for (const [what, signKey, signCert, extra, signer] of cases) {
      const out = path.join(dir, `ec-${copies++}`);
      await cp(only612, out, { recursive: true });
      const run = await kfarm(['sign', out, '--sign-key', signKey, '--sign-cert', signCert], { ...env, ...extra });
      expect(run.exitCode, `${what}: ${run.stderr}`).toBe(0);
      const [m] = await tarballModules(out);
      expect(m?.file).toBe('hello.ko.xz');
      expect(await modinfo(m!.data, m!.file, 'signer'), what).toBe(signer);
      const signature = parseModuleSignature(await plainModule(m!.data, m!.file));
      expect((await verifyPkcs7(signature!.content, signature!.pkcs7, await readFile(signCert))).ok, what).toBe(true);
      const checked = await sums(out);
      expect(checked.ok, checked.output).toBe(true);
    }
  }, 600_000);
});
