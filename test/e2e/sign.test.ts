import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { extractTar } from '../../src/executor/archive.js';
import { run } from '../../src/process/run.js';
import type { BuildReport } from '../../src/report/report.js';
import { parseModuleSignature, verifyPkcs7 } from '../../src/signing/index.js';
import { defaultKernels, example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';
import { moduleEntry, plainModule } from '../helpers/module-files.js';
import { unpackAll } from '../helpers/unpack-all.js';
import { createPrivateKey } from 'node:crypto';
import { PACKABLE_FORMATS } from '../../src/packaging/packers.js';
import { makeSigningKey } from '../helpers/signing-key.js';

/**
 * `kfarm build --sign-key --sign-cert` end to end: every module in the out dir is signed by the
 * kernel's own sign-file (6.1: .ko, 6.12: .ko.xz), the signature verifies against the cert with
 * the real openssl, the key's bytes are nowhere in the out dir, and a certificate of another key
 * is refused before any build (exit 2).
 */
let env: Record<string, string>;
let dir: string;
let kernels: string;

async function makeKey(name: string): Promise<{ key: string; cert: string }> {
  return makeSigningKey(dir, name, `kfarm e2e ${name}`);
}

beforeAll(async () => {
  env = await isolatedEnv('sign');
  dir = await tempDir('sign-keys');
  const d12 = (await defaultKernels()).split(',');
  kernels = [
    d12
      .filter((k) => k.startsWith('6.1.'))
      .sort()
      .at(-1),
    d12.find((k) => k.startsWith('6.12.')),
  ].join(',');
}, 120_000);

describe('kfarm build --sign-key --sign-cert', () => {
  it('signs every module it writes; the signature verifies; the key is nowhere in --out', async () => {
    const { key, cert } = await makeKey('main');
    const out = await tempDir('sign-out');
    // every format: the key must be in none of the packages either
    const built = await kfarm(
      ['build', example('hello'), '--kernels', kernels, '--out', out, '--sign-key', key, '--sign-cert', cert, '--format', PACKABLE_FORMATS().join(',')],
      env,
    );
    expect(built.exitCode, built.stderr).toBe(0);
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
    expect(report.kernels.map((k) => k.modules[0]?.file).sort()).toEqual(['hello.ko', 'hello.ko.xz']);
    const certPem = await readFile(cert);
    for (const k of report.kernels) {
      const entries = await extractTar(
        gunzipSync(await readFile(path.join(out, k.tarball?.path ?? 'missing'))),
        { maxBytes: 1 << 26, maxEntries: 100, allowSymlinks: false },
        'tarball',
      );
      const entry = moduleEntry(entries, k.kernel, 'x86_64', 'hello');
      const file = path.join(out, `check-${path.basename(entry?.path ?? 'x')}`);
      await writeFile(file, entry?.data ?? Buffer.alloc(0));
      expect((await run('modinfo', ['-F', 'signer', file])).stdout.trim()).toBe('kfarm e2e main');
      expect((await run('modinfo', ['-F', 'sig_hashalgo', file])).stdout.trim()).toBe('sha256');
      const signature = parseModuleSignature(await plainModule(entry?.data ?? Buffer.alloc(0), entry?.path ?? '.ko'));
      expect(signature, k.kernel).toBeDefined();
      expect((await verifyPkcs7(signature?.content ?? Buffer.alloc(0), signature?.pkcs7 ?? Buffer.alloc(0), certPem)).ok).toBe(true);
    }
    // The key in every form it could leak in: each base64 line of the PEM as given, and the
    // private numbers' raw bytes (any DER encoding of the key: PKCS#1, PKCS#8) and hex. The
    // cert's public modulus is left out on purpose: the cert may be shipped.
    const keyPem = await readFile(key, 'utf8');
    const pemLines = keyPem.split('\n').filter((l) => l.length === 64 && !l.startsWith('-----'));
    expect(pemLines.length).toBeGreaterThan(10);
    const jwk = createPrivateKey(keyPem).export({ format: 'jwk' });
    const secrets = [jwk.d, jwk.p, jwk.q].map((v) => Buffer.from(v ?? '', 'base64url'));
    // d is about 256 bytes, p and q about 128 (a leading zero byte is dropped): long enough never to occur by chance
    for (const b of secrets) expect(b.length).toBeGreaterThanOrEqual(120);
    const needles: Array<[string, Buffer]> = [
      ...pemLines.map((l, i): [string, Buffer] => [`PEM line ${i + 2}`, Buffer.from(l)]),
      ...secrets.map((b, i): [string, Buffer] => [`private number ${'dpq'[i]}`, b]),
      ['d in hex', Buffer.from(secrets[0]?.toString('hex') ?? 'none')],
    ];
    // The out dir as its readers get it: tarballs, packages and a 6.12 .ko.xz opened and searched inside.
    const unpacked = await unpackAll(out, await tempDir('sign-unpacked'));
    expect(unpacked.opened.deb, 'bmdeb and dkms-deb packages opened').toBeGreaterThanOrEqual(3);
    expect(unpacked.opened.rpm, 'kmod-rpm and dkms-rpm packages opened').toBeGreaterThanOrEqual(3);
    expect(unpacked.opened.xz, 'a 6.12 .ko.xz decompressed').toBeGreaterThanOrEqual(1);
    expect(unpacked.opened.gzip, 'DKMS tarballs decompressed').toBeGreaterThanOrEqual(3);
    expect(unpacked.opened.tar).toBeGreaterThanOrEqual(3);
    const found: string[] = [];
    for (const file of unpacked.files) {
      const data = await readFile(file);
      for (const [what, needle] of needles) if (data.includes(needle)) found.push(`${what} in ${file}`);
    }
    expect(found).toEqual([]);
  }, 600_000);

  it('a certificate of another key is refused before any build: exit 2, says so', async () => {
    const { key } = await makeKey('one');
    const { cert } = await makeKey('two');
    const out = await tempDir('sign-bad');
    const built = await kfarm(['build', example('hello'), '--kernels', kernels, '--out', out, '--sign-key', key, '--sign-cert', cert], env);
    expect(built.exitCode).toBe(2);
    expect(built.stderr).toMatch(/does not match|not the certificate|different/i);
    expect(await readdir(out)).toEqual([]);
  }, 300_000);

  it('--sign-key without --sign-cert is bad input', async () => {
    const { key } = await makeKey('alone');
    const built = await kfarm(['build', example('hello'), '--out', await tempDir('sign-alone'), '--sign-key', key], env);
    expect(built.exitCode).toBe(2);
    expect(built.stderr).toContain('--sign-key given without --sign-cert');
  });
});
