import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import type { IsolatedRun } from '../../src/executor/runtime.js';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { listKfarmImages, type KfarmImage } from '../../src/images/catalog.js';
import { readPackInputs } from '../../src/packaging/pack-input.js';
import { checkSigningSetup, signModules, type ModuleFile } from '../../src/signing/index.js';
import { parseModuleSignature } from '../../src/signing/module-signature.js';
import { defaultKernels, example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';
import { releaseKernel } from '../helpers/run-driver.js';

/**
 * Signing with the kernels' own sign-file, checked with the host's modinfo and openssl: a
 * throwaway key and self-signed certificate made as the kernel docs make them, hello built
 * for a 6.1 kernel (.ko) and a 6.12 one (.ko.xz).
 */
// chosen in beforeAll among the kernels held (setup's debian-12 set), as every test does
let K61 = '';
let K612 = '';
const CN = 'kfarm test signing key';

const runtime = new DockerRuntime();
let dir: string;
let images: KfarmImage[];
const built = new Map<string, ModuleFile[]>();
const files = {} as Record<'key' | 'cert' | 'otherKey' | 'otherCert' | 'encKey' | 'derCert' | 'garbage', string>;

async function makeKey(name: string): Promise<{ key: string; cert: string }> {
  const config = path.join(dir, `${name}.genkey`);
  await writeFile(
    config,
    [
      '[ req ]',
      'default_bits = 2048',
      'distinguished_name = req_distinguished_name',
      'prompt = no',
      'string_mask = utf8only',
      'x509_extensions = myexts',
      '[ req_distinguished_name ]',
      `CN = ${name === 'main' ? CN : `other ${name}`}`,
      '[ myexts ]',
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=digitalSignature',
      'extendedKeyUsage=codeSigning',
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
      '',
    ].join('\n'),
  );
  const key = path.join(dir, `${name}-key.pem`);
  const cert = path.join(dir, `${name}-cert.pem`);
  await execa('openssl', ['req', '-new', '-nodes', '-utf8', '-sha256', '-days', '36500', '-batch', '-x509', '-config', config, '-outform', 'PEM', '-out', cert, '-keyout', key]);
  return { key, cert };
}

const imageOf = (kernel: string) => {
  const image = images.find((i) => i.kernels.includes(kernel));
  if (!image) throw new Error(`no kfarm image holds ${kernel}: run kfarm images sync`);
  return image;
};

/** the PKCS#7 trailer cut out and checked by openssl cms, as a user without a kernel would */
async function cmsVerify(elf: Buffer, certPath: string, name: string): Promise<number> {
  const sig = parseModuleSignature(elf);
  if (!sig) throw new Error('no signature');
  const content = path.join(dir, `${name}.content`);
  const p7 = path.join(dir, `${name}.p7`);
  await writeFile(content, sig.content);
  await writeFile(p7, sig.pkcs7);
  const r = await execa(
    'openssl',
    ['cms', '-verify', '-binary', '-inform', 'DER', '-in', p7, '-content', content, '-certfile', certPath, '-nointern', '-noverify', '-out', '/dev/null'],
    { reject: false },
  );
  return r.exitCode ?? -1;
}

const unxz = async (data: Buffer) => Buffer.from((await execa('xz', ['-dc'], { input: data, encoding: 'buffer', stripFinalNewline: false })).stdout);

beforeAll(async () => {
  dir = await tempDir('signing');
  const d12 = (await defaultKernels()).split(',');
  K61 =
    d12
      .filter((k) => k.startsWith('6.1.'))
      .sort()
      .at(-1) ?? 'none';
  K612 = d12.find((k) => k.startsWith('6.12.')) ?? 'none';
  images = await listKfarmImages(runtime);
  const main = await makeKey('main');
  const other = await makeKey('other');
  Object.assign(files, { key: main.key, cert: main.cert, otherKey: other.key, otherCert: other.cert });
  files.encKey = path.join(dir, 'enc-key.pem');
  await execa('openssl', ['pkey', '-in', main.key, '-aes256', '-passout', 'pass:sesame', '-out', files.encKey]);
  files.derCert = path.join(dir, 'cert.der');
  await execa('openssl', ['x509', '-in', main.cert, '-outform', 'DER', '-out', files.derCert]);
  files.garbage = path.join(dir, 'garbage.pem');
  await writeFile(files.garbage, 'not a certificate\n');

  const out = path.join(dir, 'out');
  const env = await isolatedEnv('signing');
  const build = await kfarm(['build', example('hello'), '--out', out, '--kernels', `${K61},${K612}`], env);
  expect(build.exitCode, build.stderr).toBe(0);
  const [input] = await readPackInputs(out);
  for (const k of input?.kernels ?? [])
    built.set(
      k.kernel,
      k.modules.map((m) => ({ fileName: m.fileName, data: m.data })),
    );
  expect(built.get(K61)?.map((m) => m.fileName)).toEqual(['hello.ko']);
  expect(built.get(K612)?.map((m) => m.fileName)).toEqual(['hello.ko.xz']);
}, 600_000);

describe('signModules', () => {
  it('signs a .ko (6.1) and a .ko.xz (6.12) so that modinfo shows the signer and openssl cms verifies them; a tampered module fails', async () => {
    const serial = (await execa('openssl', ['x509', '-noout', '-serial', '-in', files.cert])).stdout.replace(/^serial=/, '').trim();
    for (const kernel of [K61, K612]) {
      const modules = built.get(kernel) ?? [];
      const signed = await signModules({ runtime, image: imageOf(kernel).ref, kernel, modules, key: { keyPath: files.key, certPath: files.cert } });
      expect(signed.map((m) => m.fileName)).toEqual(modules.map((m) => m.fileName));
      const m = signed[0]!;
      const file = path.join(dir, `${kernel}-${m.fileName}`);
      await writeFile(file, m.data);
      const field = async (f: string) => (await execa('modinfo', ['-F', f, file])).stdout.trim();
      expect(await field('signer')).toBe(CN);
      // modinfo prints the serial's bytes with colons, openssl as one hex number
      expect((await field('sig_key')).replace(/:/g, '').replace(/^0+/, '')).toBe(serial.toUpperCase().replace(/^0+/, ''));
      expect(await field('sig_hashalgo')).toBe('sha256');
      expect(await field('sig_id')).toBe('PKCS#7');

      const elf = m.fileName.endsWith('.xz') ? await unxz(m.data) : m.data;
      expect(elf.subarray(-28).toString('latin1')).toBe('~Module signature appended~\n');
      const original = m.fileName.endsWith('.xz') ? await unxz(modules[0]!.data) : modules[0]!.data;
      expect(parseModuleSignature(elf)?.content.equals(original)).toBe(true);
      expect(await cmsVerify(elf, files.cert, `${kernel}-good`)).toBe(0);
      // the other certificate, and one flipped byte of the module, each fail
      expect(await cmsVerify(elf, files.otherCert, `${kernel}-wrongcert`)).not.toBe(0);
      const tampered = Buffer.from(elf);
      tampered[100] = (tampered[100] ?? 0) ^ 0xff;
      expect(await cmsVerify(tampered, files.cert, `${kernel}-tampered`)).not.toBe(0);
      if (m.fileName.endsWith('.xz')) expect((await execa('xz', ['-lvv', file])).stdout).toMatch(/Check:\s+CRC32/);
    }
  }, 300_000);

  it('puts the key on stdin only: never in the command, environment or labels, nor in what comes back', async () => {
    const seen: IsolatedRun[] = [];
    const recording = Object.create(runtime) as DockerRuntime;
    recording.runIsolated = (run) => {
      seen.push(run);
      return runtime.runIsolated(run);
    };
    const keyPem = await readFile(files.key, 'utf8');
    // a line from the middle of the PEM body, and the DER bytes of the key
    const keyLine = keyPem.split('\n')[5]!;
    const keyDer = Buffer.from((await execa('openssl', ['pkey', '-in', files.key, '-outform', 'DER'], { encoding: 'buffer', stripFinalNewline: false })).stdout);
    const signed = await signModules({
      runtime: recording,
      image: imageOf(K612).ref,
      kernel: K612,
      modules: built.get(K612) ?? [],
      key: { keyPath: files.key, certPath: files.cert },
    });
    expect(seen).toHaveLength(1);
    const run = seen[0]!;
    expect(run.stdin.toString('latin1')).toContain(keyLine); // the sanity check: it did travel, on stdin
    const visible = JSON.stringify({ cmd: run.cmd, env: run.env, labels: run.labels, tmpfs: run.tmpfs, image: run.image });
    expect(visible).not.toContain(keyLine);
    expect(visible).not.toContain('PRIVATE KEY');
    for (const m of signed) {
      const elf = await unxz(m.data);
      for (const data of [m.data, elf]) {
        expect(data.includes(Buffer.from(keyLine))).toBe(false);
        expect(data.includes(keyDer.subarray(keyDer.length - 64))).toBe(false);
      }
    }
    expect(run.tmpfs['/kfarm-sign']).toMatch(/mode=0700/);
  }, 120_000);

  it('re-signing a signed module replaces its signature instead of stacking a second one', async () => {
    const kernel = K61;
    const first = await signModules({ runtime, image: imageOf(kernel).ref, kernel, modules: built.get(kernel) ?? [], key: { keyPath: files.key, certPath: files.cert } });
    const again = await signModules({ runtime, image: imageOf(kernel).ref, kernel, modules: first, key: { keyPath: files.otherKey, certPath: files.otherCert } });
    const sig = parseModuleSignature(again[0]!.data);
    expect(sig?.content.equals(built.get(kernel)![0]!.data)).toBe(true);
    expect(await cmsVerify(again[0]!.data, files.otherCert, 'resigned')).toBe(0);
  }, 120_000);

  it('refuses what a signer hands back when it changed the module, or added or left out a file', async () => {
    const kernel = K61;
    const modules = built.get(kernel) ?? [];
    const hostile = (edit: (run: IsolatedRun) => IsolatedRun) => {
      const r = Object.create(runtime) as DockerRuntime;
      r.runIsolated = (run) => runtime.runIsolated(edit(run));
      return r;
    };
    // a signer script that flips a byte of the module before signing it (real sign-file, real key)
    const flip = hostile((run) => ({
      ...run,
      cmd: run.cmd.map((c, i) =>
        i === 2 ? c.replace('strip_signature work/m.ko "$name"', 'strip_signature work/m.ko "$name"; printf "\\xff" | dd of=work/m.ko bs=1 seek=200 conv=notrunc 2>/dev/null') : c,
      ),
    }));
    await expect(signModules({ runtime: flip, image: imageOf(kernel).ref, kernel, modules, key: { keyPath: files.key, certPath: files.cert } })).rejects.toThrow(
      /changed the bytes of hello.ko/,
    );
    const extra = hostile((run) => ({
      ...run,
      cmd: run.cmd.map((c, i) => (i === 2 ? c.replace('names+=("$name")', 'names+=("$name"); echo x > out/evil.ko; names+=(evil.ko)') : c)),
    }));
    await expect(signModules({ runtime: extra, image: imageOf(kernel).ref, kernel, modules, key: { keyPath: files.key, certPath: files.cert } })).rejects.toThrow(/handed back/);
    const unsigned = hostile((run) => ({
      ...run,
      cmd: run.cmd.map((c, i) => (i === 2 ? c.replace('"$sign_file" "$hash" key.pem cert.pem work/m.ko work/s.ko', 'cp work/m.ko work/s.ko') : c)),
    }));
    await expect(signModules({ runtime: unsigned, image: imageOf(kernel).ref, kernel, modules, key: { keyPath: files.key, certPath: files.cert } })).rejects.toThrow(
      /without a module signature/,
    );
  }, 180_000);
});

describe('checkSigningSetup', () => {
  it("finds each kernel image's own sign-file and sha256: debian-11 5.10, debian-12 6.1 and 6.12, debian-13 7.3.4, and an arm64 image", async () => {
    const wanted = [await releaseKernel('debian-11'), K61, K612, await releaseKernel('debian-13'), await releaseKernel('debian-12', 'arm64')];
    images = await listKfarmImages(runtime);
    const use = wanted.map((k) => ({ ...imageOf(k), kernels: [k] }));
    const stdins: Buffer[] = [];
    const recording = Object.create(runtime) as DockerRuntime;
    recording.runIsolated = (run) => {
      stdins.push(run.stdin);
      return runtime.runIsolated(run);
    };
    const setup = await checkSigningSetup({ keyPath: files.key, certPath: files.cert, images: use, runtime: recording });
    expect(setup.kernels.map((k) => k.kernel)).toEqual(wanted);
    // the probes see no key at all: one fresh container per kernel, with nothing on stdin
    expect(stdins.map((b) => b.length)).toEqual(wanted.map(() => 0));
    for (const k of setup.kernels) {
      expect(k.hash).toBe('sha256');
      expect(k.signFile).toBe(`/lib/modules/${k.kernel}/build/scripts/sign-file`);
    }
    // which of them can verify an ECDSA module signature (CONFIG_CRYPTO_ECDSA): 5.10 and 6.1 cannot, 6.12 and 7.3 can
    expect(setup.kernels.map((k) => k.ecdsa)).toEqual([false, false, true, true, true]);
    expect(setup.key.subject).toBe(`CN=${CN}`);
  }, 1_500_000);

  const setupError = async (options: { keyPath: string; certPath: string; pin?: string; images?: KfarmImage[] }) => {
    try {
      await checkSigningSetup({ images: [], runtime, ...options });
    } catch (err) {
      if (isKfarmError(err)) return err;
      throw err;
    }
    throw new Error('no error');
  };

  it('says what to do for an unreadable key or cert, an encrypted key, a cert of another key, and a file that is no cert', async () => {
    const missing = await setupError({ keyPath: path.join(dir, 'nope.pem'), certPath: files.cert });
    expect(missing.code).toBe('BAD_OPTION');
    expect(missing.message).toMatch(/cannot read the signing key .*nope\.pem/);
    const unreadableCert = await setupError({ keyPath: files.key, certPath: path.join(dir, 'nope.crt') });
    expect(unreadableCert.message).toMatch(/cannot read the signing certificate/);

    const encrypted = await setupError({ keyPath: files.encKey, certPath: files.cert });
    expect(encrypted.message).toMatch(/encrypted with a passphrase/);
    expect(encrypted.hint).toMatch(/KBUILD_SIGN_PIN/);
    expect(encrypted.hint).toMatch(/openssl pkey -in key\.pem -out key-plain\.pem/);
    const wrongPin = await setupError({ keyPath: files.encKey, certPath: files.cert, pin: 'wrong' });
    expect(wrongPin.message).toMatch(/cannot read .* as a private key with the passphrase in KBUILD_SIGN_PIN/);

    const mismatch = await setupError({ keyPath: files.key, certPath: files.otherCert });
    expect(mismatch.message).toMatch(/does not match the key/);
    const garbage = await setupError({ keyPath: files.key, certPath: files.garbage });
    expect(garbage.message).toMatch(/is not an X\.509 certificate in PEM or DER/);
  }, 60_000);

  it('takes a DER certificate and, with KBUILD_SIGN_PIN, an encrypted key, and signs with them', async () => {
    const setup = await checkSigningSetup({
      keyPath: files.encKey,
      certPath: files.derCert,
      pin: 'sesame',
      images: [imageOf(K61)].map((i) => ({ ...i, kernels: [K61] })),
      runtime,
    });
    expect(setup.key.certPem.toString()).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const signed = await signModules({ runtime, image: imageOf(K61).ref, kernel: K61, modules: built.get(K61) ?? [], key: setup.key });
    expect(await cmsVerify(signed[0]!.data, files.cert, 'der')).toBe(0);
  }, 120_000);

  it('refuses a kernel whose image has no sign-file, naming the kernel and the image', async () => {
    // a Debian image without linux-kbuild, standing for a kernel image that lacks it
    const base = 'kfarm/base:bookworm';
    const err = await setupError({ keyPath: files.key, certPath: files.cert, images: [{ name: 'bare', ref: base, id: base, arch: 'x86_64', kernels: [K61] }] });
    expect(err.code).toBe('BAD_OPTION');
    expect(err.message).toBe(`cannot sign modules for ${K61}: its image kfarm/base:bookworm has no sign-file that runs`);
    expect(err.hint).toMatch(/linux-kbuild/);
  }, 60_000);

  it('refuses a kernel whose image is not on this host before any build', async () => {
    const err = await setupError({
      keyPath: files.key,
      certPath: files.cert,
      images: [{ name: 'gone', ref: 'kfarm/debian-12:no-such-kernel', id: 'x', arch: 'x86_64', kernels: ['0.0.0-gone'] }],
    });
    expect(err.code).toBe('BAD_OPTION');
    expect(err.message).toBe('cannot sign modules for 0.0.0-gone: its image kfarm/debian-12:no-such-kernel is not on this host');
  });
});
