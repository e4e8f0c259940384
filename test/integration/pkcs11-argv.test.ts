import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cmsSignature } from '../../src/signing/host-sign.js';
import { loadTokenKey, tokenKeyArgs, withTokenOpenssl } from '../../src/signing/pkcs11-token.js';
import { tempDir } from '../helpers/kfarm-cli.js';

/**
 * A token's PIN must not reach the process list (`ps`, /proc/<pid>/cmdline show every
 * argument to every user of the host): kfarm hands it to pkcs11-tool and openssl through
 * their environment only. An `openssl` and a `pkcs11-tool` first on PATH record every command
 * line kfarm runs them with, then run the real ones against a SoftHSM2 token.
 */
const SOFTHSM = '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so';
const PIN = '97531864';
let dir: string;
let argvLog: string;
let certPath: string;
const saved = { PATH: process.env.PATH, log: process.env.KFARM_TEST_ARGV, conf: process.env.SOFTHSM2_CONF };

beforeAll(async () => {
  dir = await tempDir('pkcs11-argv');
  await mkdir(path.join(dir, 'tokens'));
  const conf = path.join(dir, 'softhsm2.conf');
  await writeFile(conf, `directories.tokendir = ${path.join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  const env = { SOFTHSM2_CONF: conf, P: PIN };
  await execa('softhsm2-util', ['--init-token', '--free', '--label', 'kfarm-argv', '--so-pin', '13571357', '--pin', PIN], { env });
  await execa(
    'pkcs11-tool',
    ['--module', SOFTHSM, '--token-label', 'kfarm-argv', '--login', '--pin', 'env:P', '--keypairgen', '--key-type', 'rsa:2048', '--label', 'modsign', '--id', '01'],
    { env, stdin: 'ignore' },
  );
  const cnf = path.join(dir, 'openssl.cnf');
  await writeFile(
    cnf,
    `openssl_conf = oc\n[oc]\nengines = e\n[e]\npkcs11 = p\n[p]\nengine_id = pkcs11\nMODULE_PATH = ${SOFTHSM}\ninit = 0\n[req]\ndistinguished_name = dn\nx509_extensions = ext\n[dn]\n[ext]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=codeSigning\n`,
  );
  certPath = path.join(dir, 'cert.pem');
  await execa(
    'openssl',
    ['req', '-new', '-x509', '-engine', 'pkcs11', '-keyform', 'engine', '-key', 'pkcs11:token=kfarm-argv;object=modsign;type=private', '-passin', 'env:P'].concat([
      '-subj',
      '/CN=argv',
      '-days',
      '30',
      '-sha256',
      '-out',
      certPath,
    ]),
    { env: { ...env, OPENSSL_CONF: cnf }, stdin: 'ignore' },
  );
  // the recorders: each argument on its own line, then the real tool
  argvLog = path.join(dir, 'argv.log');
  const bin = path.join(dir, 'bin');
  await mkdir(bin);
  for (const tool of ['openssl', 'pkcs11-tool']) {
    const real = (await execa('sh', ['-c', `command -v ${tool}`])).stdout.trim();
    await writeFile(
      path.join(bin, tool),
      `#!/bin/sh\necho "== ${tool}" >>"$KFARM_TEST_ARGV"\nfor a in "$@"; do printf '%s\\n' "$a" >>"$KFARM_TEST_ARGV"; done\nexec ${real} "$@"\n`,
    );
    await chmod(path.join(bin, tool), 0o755);
  }
  process.env.PATH = `${bin}:${saved.PATH ?? ''}`;
  process.env.KFARM_TEST_ARGV = argvLog;
  process.env.SOFTHSM2_CONF = conf;
}, 120_000);

afterAll(() => {
  for (const [name, value] of [
    ['PATH', saved.PATH],
    ['KFARM_TEST_ARGV', saved.log],
    ['SOFTHSM2_CONF', saved.conf],
  ] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

describe("a PKCS#11 token's PIN on the process list", () => {
  it('is in no command line of pkcs11-tool or openssl, through the checks before a build and a signature', async () => {
    const key = await loadTokenKey('pkcs11:token=kfarm-argv;object=modsign', certPath, { ...process.env, KFARM_PKCS11_MODULE: SOFTHSM, KFARM_PKCS11_PIN: PIN });
    const signature = await withTokenOpenssl(key, (env) =>
      cmsSignature(Buffer.from('the bytes of a module'), 'sha256', { certPem: key.certPem, keyArgs: tokenKeyArgs(key, '-inkey'), env }, 'probe'),
    );
    expect(signature.length).toBeGreaterThan(100);
    const argv = await readFile(argvLog, 'utf8');
    // the recorders saw the token opened and the signature made
    expect(argv).toContain('== pkcs11-tool\n');
    expect(argv).toMatch(/== openssl\ncms\n-sign\n/);
    expect(argv).not.toContain(PIN);
  });
});
