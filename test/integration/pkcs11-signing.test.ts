import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { listKfarmImages, type KfarmImage } from '../../src/images/catalog.js';
import { readPackInputs } from '../../src/packaging/pack-input.js';
import { appendSignature, cmsSignature, signModules, type ModuleFile } from '../../src/signing/index.js';
import { parseModuleSignature } from '../../src/signing/module-signature.js';
import { debian12Kernels, example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';
import { makeTestToken, SOFTHSM } from '../helpers/softhsm.js';

/**
 * `--sign-key pkcs11:<uri>` with SoftHSM2 as the token: an RSA key generated inside it
 * (sensitive, never extractable), a certificate made through OpenSSL's pkcs11 engine, hello
 * built and signed for a 6.1 kernel (.ko) and a 6.12 one (.ko.xz). And the proof that the
 * host's signature is sign-file's: with a key file, byte for byte the same module.
 */
const PIN = '24682468';
const runtime = new DockerRuntime();
let dir: string;
let tokenEnv: Record<string, string>;
let certPath: string;
let K61 = '';
let K612 = '';
let images: KfarmImage[];

const p11 = (args: string[], env: Record<string, string> = {}) =>
  execa('pkcs11-tool', ['--module', SOFTHSM, '--token-label', 'kfarm-test', ...args], { env: { ...tokenEnv, ...env }, reject: false, stdin: 'ignore' });

async function allFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(path.join(e.parentPath, e.name));
  return out;
}
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const unxz = async (data: Buffer) => Buffer.from((await execa('xz', ['-dc'], { input: data, encoding: 'buffer', stripFinalNewline: false })).stdout);

/** --out holds the certificate in DER (what mokutil --import takes) and ENROLL.md saying how */
async function expectEnrollFiles(out: string, cert: string): Promise<void> {
  const der = Buffer.from((await execa('openssl', ['x509', '-in', cert, '-outform', 'DER'], { encoding: 'buffer', stripFinalNewline: false })).stdout);
  expect((await readFile(path.join(out, 'signing-cert.der'))).equals(der)).toBe(true);
  const enroll = await readFile(path.join(out, 'ENROLL.md'), 'utf8');
  expect(enroll).toContain('sudo mokutil --import signing-cert.der');
  expect(enroll).toMatch(/MokManager/);
  const fp = (await execa('openssl', ['x509', '-in', cert, '-noout', '-fingerprint', '-sha256'])).stdout.split('=')[1]!.trim();
  expect(enroll).toContain(fp);
}

beforeAll(async () => {
  dir = await tempDir('pkcs11');
  ({ k61: K61, k612: K612 } = await debian12Kernels());
  images = await listKfarmImages(runtime);
  // the token of the other token tests: keys modsign (its certificate at certPath) and two named twin
  const token = await makeTestToken(dir);
  expect(token.pin).toBe(PIN);
  tokenEnv = token.env;
  certPath = token.certPath;
  // loadTokenKey called in this process: its pkcs11-tool and openssl find the token through it
  process.env.SOFTHSM2_CONF = token.env.SOFTHSM2_CONF;
}, 120_000);

describe('kfarm build --sign-key pkcs11:', () => {
  it('signs every module through the token (6.1 .ko, 6.12 .ko.xz): openssl cms verifies each, a tampered one fails; the key leaves no trace', async () => {
    // the key really cannot leave the token: pkcs11-tool cannot read it out
    const read = await p11(['--login', '--pin', 'env:P', '--read-object', '--type', 'privkey', '--label', 'modsign'], { P: PIN });
    expect(read.exitCode === 0 && read.stdout.length > 0).toBe(false);
    const listed = await p11(['--login', '--pin', 'env:P', '--list-objects', '--type', 'privkey', '--label', 'modsign'], { P: PIN });
    expect(listed.stdout).toMatch(/never extractable/);

    const out = path.join(dir, 'out');
    const env: Record<string, string> = { ...(await isolatedEnv('pkcs11')), ...tokenEnv, KFARM_PKCS11_PIN: PIN };
    const started = Date.now();
    const run = await kfarm(
      ['build', example('hello'), '--out', out, '--kernels', `${K61},${K612}`, '--sign-key', 'pkcs11:token=kfarm-test;object=modsign', '--sign-cert', certPath],
      env,
    );
    expect(run.exitCode, run.stderr).toBe(0);
    console.log(`build + token signing of 2 kernels: ${Date.now() - started} ms`);
    const [input] = await readPackInputs(out);
    const mods = input?.kernels.flatMap((k) => k.modules.map((m) => ({ kernel: k.kernel, ...m }))) ?? [];
    expect(mods.map((m) => m.fileName).sort()).toEqual(['hello.ko', 'hello.ko.xz']);
    for (const m of mods) {
      const elf = m.fileName.endsWith('.xz') ? await unxz(m.data) : m.data;
      const sig = parseModuleSignature(elf);
      expect(sig?.idType).toBe(2);
      const verify = async (content: Buffer, name: string) => {
        await writeFile(path.join(dir, `${name}.c`), content);
        await writeFile(path.join(dir, `${name}.p7`), sig!.pkcs7);
        const argv = ['cms', '-verify', '-binary', '-inform', 'DER', '-in', path.join(dir, `${name}.p7`), '-content', path.join(dir, `${name}.c`)];
        return (await execa('openssl', [...argv, '-certfile', certPath, '-nointern', '-noverify', '-out', '/dev/null'], { reject: false })).exitCode;
      };
      expect(await verify(sig!.content, `${m.kernel}-good`)).toBe(0);
      const tampered = Buffer.from(sig!.content);
      tampered[100] = (tampered[100] ?? 0) ^ 0xff;
      expect(await verify(tampered, `${m.kernel}-bad`)).not.toBe(0);
      const file = path.join(dir, `${m.kernel}-${m.fileName}`);
      await writeFile(file, m.data);
      expect((await execa('modinfo', ['-F', 'signer', file])).stdout.trim()).toBe('kfarm token key');
      expect((await execa('modinfo', ['-F', 'sig_hashalgo', file])).stdout.trim()).toBe('sha256');
    }

    // no file under the state dir, --out or the logs is the token's store or a private key;
    // nothing kfarm printed holds the PIN
    const tokenData = await Promise.all((await allFiles(path.join(dir, 'tokens'))).map((f) => readFile(f)));
    // SoftHSM2's store: the objects' files (its empty lock files say nothing)
    const tokenFiles = new Set(tokenData.filter((d) => d.length > 0).map(sha));
    expect(tokenFiles.size).toBeGreaterThan(3);
    const looked = [...(await allFiles(env['KFARM_STATE_DIR']!)), ...(await allFiles(out))];
    expect(looked.length).toBeGreaterThan(3);
    for (const f of looked) {
      if ((await stat(f)).size > 64 * 1024 * 1024) continue;
      const data = await readFile(f);
      expect(tokenFiles.has(sha(data)), f).toBe(false);
      expect(data.includes(Buffer.from('PRIVATE KEY')), f).toBe(false);
      expect(data.includes(Buffer.from(PIN)), f).toBe(false);
    }
    expect(run.stdout + run.stderr).not.toContain(PIN);
    await expectEnrollFiles(out, certPath);
  }, 900_000);

  const refused = async (uri: string, extraEnv: Record<string, string>) => {
    const env = { ...(await isolatedEnv('pkcs11-bad')), ...tokenEnv, ...extraEnv };
    const out = path.join(dir, `out-bad-${Math.random().toString(36).slice(2)}`);
    const started = Date.now();
    const run = await kfarm(['build', example('hello'), '--out', out, '--kernels', K61, '--sign-key', uri, '--sign-cert', certPath], env);
    return { ...run, ms: Date.now() - started, out };
  };

  it('refuses before any build: no PIN, a wrong PIN, a URI matching no key or two keys, a certificate of another key', async () => {
    const noPin = await refused('pkcs11:token=kfarm-test;object=modsign', {});
    expect(noPin.exitCode).toBe(2);
    expect(noPin.stderr).toMatch(/no PIN for the token/);
    expect(noPin.stderr).toMatch(/KFARM_PKCS11_PIN/);
    // nothing was built: no job ran, so --out holds no report
    expect(noPin.stderr).not.toMatch(/built|hello\.ko/);
    expect(existsSync(path.join(noPin.out, 'report.json'))).toBe(false);

    const wrongPin = await refused('pkcs11:token=kfarm-test;object=modsign', { KFARM_PKCS11_PIN: '0000' });
    expect(wrongPin.exitCode).toBe(2);
    expect(wrongPin.stderr).toMatch(/refused the PIN/);

    const none = await refused('pkcs11:token=kfarm-test;object=nosuchkey', { KFARM_PKCS11_PIN: PIN });
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toContain('pkcs11:token=kfarm-test;object=nosuchkey');
    expect(none.stderr).toMatch(/no private key in the token kfarm-test matches/);

    const two = await refused('pkcs11:token=kfarm-test;object=twin', { KFARM_PKCS11_PIN: PIN });
    expect(two.exitCode).toBe(2);
    expect(two.stderr).toMatch(/2 private keys in the token kfarm-test match/);

    // id= picks one of the twins: the token opens, the certificate is modsign's, not this key's
    const otherKey = await refused('pkcs11:token=kfarm-test;object=twin;id=%02', { KFARM_PKCS11_PIN: PIN });
    expect(otherKey.exitCode).toBe(2);
    expect(otherKey.stderr).toMatch(/does not match the token's key/);

    const pinInUri = await refused('pkcs11:token=kfarm-test;object=modsign?pin-value=' + PIN, {});
    expect(pinInUri.exitCode).toBe(2);
    expect(pinInUri.stderr).toMatch(/pin-value/);
    expect(pinInUri.stderr).not.toContain(PIN);
  }, 300_000);

  it('takes the PIN from the file the URI names (pin-source) or KFARM_PKCS11_PIN_FILE names; finds the token through p11-kit by default', async () => {
    const pinFile = path.join(dir, 'pin');
    await writeFile(pinFile, `${PIN}\n`, { mode: 0o600 });
    const { loadTokenKey } = await import('../../src/signing/index.js');
    const key = await loadTokenKey(`pkcs11:token=kfarm-test;object=modsign?pin-source=file:${pinFile}`, certPath, tokenEnv);
    expect(key.subject).toBe('CN=kfarm token key');
    // KFARM_PKCS11_PIN_FILE, and without KFARM_PKCS11_MODULE the default library: p11-kit's proxy, which finds SoftHSM2
    const viaProxy = await loadTokenKey('pkcs11:token=kfarm-test;object=modsign', certPath, { KFARM_PKCS11_PIN_FILE: pinFile });
    expect(viaProxy.modulePath).toMatch(/p11-kit-proxy\.so$/);
    const wrongFile = path.join(dir, 'wrong-pin');
    await writeFile(wrongFile, '0000\n');
    await expect(loadTokenKey('pkcs11:token=kfarm-test;object=modsign', certPath, { ...tokenEnv, KFARM_PKCS11_PIN_FILE: wrongFile })).rejects.toThrow(/refused the PIN/);
  }, 60_000);
});

describe('signing many modules', () => {
  it('signs 20 modules through the token, each checked; measured beside sign-file in its container with a key file', async () => {
    const env = await isolatedEnv('pkcs11-many');
    const out = path.join(dir, 'out-many');
    const build = await kfarm(['build', example('hello'), '--out', out, '--kernels', K61], env);
    expect(build.exitCode, build.stderr).toBe(0);
    const [input] = await readPackInputs(out);
    const hello = input!.kernels[0]!.modules[0]!;
    const modules: ModuleFile[] = Array.from({ length: 20 }, (_, i) => ({ fileName: `hello${i}.ko`, data: hello.data }));
    const { loadTokenKey } = await import('../../src/signing/index.js');
    const tokenKey = await loadTokenKey('pkcs11:token=kfarm-test;object=modsign', certPath, { ...tokenEnv, KFARM_PKCS11_PIN: PIN });
    const image = images.find((i) => i.kernels.includes(K61))!;
    let t = Date.now();
    const viaToken = await signModules({ runtime, image: image.ref, kernel: K61, modules, key: tokenKey, hash: 'sha256' });
    const tokenMs = Date.now() - t;
    expect(viaToken.map((m) => parseModuleSignature(m.data)?.content.equals(hello.data))).toEqual(modules.map(() => true));
    const key = path.join(dir, 'many-key.pem');
    const cert = path.join(dir, 'many-cert.pem');
    await execa('openssl', ['req', '-new', '-nodes', '-x509', '-newkey', 'rsa:2048', '-keyout', key, '-out', cert, '-subj', '/CN=many', '-days', '30']);
    t = Date.now();
    await signModules({ runtime, image: image.ref, kernel: K61, modules, key: { keyPath: key, certPath: cert } });
    console.log(`20 modules for ${K61}: through the token (SoftHSM2) on this host ${tokenMs} ms, sign-file in its container ${Date.now() - t} ms`);
  }, 600_000);
});

describe('the host signature is sign-file’s', () => {
  it("with a key file, the host's openssl cms + trailer gives the kernel's sign-file output byte for byte on a real module", async () => {
    const key = path.join(dir, 'file-key.pem');
    const cert = path.join(dir, 'file-cert.pem');
    await execa('openssl', ['req', '-new', '-nodes', '-x509', '-newkey', 'rsa:2048', '-keyout', key, '-out', cert, '-subj', '/CN=kfarm file key', '-days', '30']);
    const env = await isolatedEnv('pkcs11-plain');
    const out = path.join(dir, 'out-plain');
    const build = await kfarm(['build', example('hello'), '--out', out, '--kernels', `${K61},${K612}`], env);
    expect(build.exitCode, build.stderr).toBe(0);
    const [input] = await readPackInputs(out);
    const certPem = await readFile(cert);
    // a key file's build gets the enrolment files too
    const signedOut = path.join(dir, 'out-plain-signed');
    const signedBuild = await kfarm(['build', example('hello'), '--out', signedOut, '--kernels', K61, '--sign-key', key, '--sign-cert', cert], env);
    expect(signedBuild.exitCode, signedBuild.stderr).toBe(0);
    await expectEnrollFiles(signedOut, cert);
    for (const k of input?.kernels ?? []) {
      const modules: ModuleFile[] = k.modules.map((m) => ({ fileName: m.fileName, data: m.data }));
      const image = images.find((i) => i.kernels.includes(k.kernel))!;
      let t = Date.now();
      const bySignFile = await signModules({ runtime, image: image.ref, kernel: k.kernel, modules, key: { keyPath: key, certPath: cert } });
      const signFileMs = Date.now() - t;
      for (const [i, m] of modules.entries()) {
        const elf = m.fileName.endsWith('.xz') ? await unxz(m.data) : m.data;
        t = Date.now();
        const host = appendSignature(elf, await cmsSignature(elf, 'sha256', { certPem, keyArgs: ['-inkey', key] }, m.fileName));
        const hostMs = Date.now() - t;
        const theirs = m.fileName.endsWith('.xz') ? await unxz(bySignFile[i]!.data) : bySignFile[i]!.data;
        expect(theirs.length).toBeGreaterThan(elf.length);
        expect(host.equals(theirs), `${k.kernel} ${m.fileName}`).toBe(true);
        console.log(`${k.kernel} ${m.fileName}: sign-file in its container ${signFileMs} ms, host openssl ${hostMs} ms`);
      }
    }
  }, 900_000);
});
