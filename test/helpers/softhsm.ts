import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';

/**
 * A SoftHSM2 token of the test's own (its store in `dir/tokens`, found through SOFTHSM2_CONF):
 * RSA keys generated inside it (sensitive, never extractable) and a certificate self-signed by
 * one of them through OpenSSL's pkcs11 engine. What `--sign-key pkcs11:` tests sign with.
 */
export const SOFTHSM = '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so';

export interface TestToken {
  label: string;
  pin: string;
  /** SOFTHSM2_CONF and KFARM_PKCS11_MODULE: what a kfarm process needs to find the token */
  env: Record<string, string>;
  /** the certificate (PEM) of the key `object=modsign` */
  certPath: string;
}

/** A token with the keys `modsign` (id 01, certificate at certPath) and two keys labelled `twin` (ids 02, 03). */
export async function makeTestToken(dir: string, subject = 'kfarm token key'): Promise<TestToken> {
  const label = 'kfarm-test';
  const pin = '24682468';
  await mkdir(path.join(dir, 'tokens'), { recursive: true });
  const conf = path.join(dir, 'softhsm2.conf');
  await writeFile(conf, `directories.tokendir = ${path.join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  const env = { SOFTHSM2_CONF: conf, KFARM_PKCS11_MODULE: SOFTHSM };
  await execa('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', '13571357', '--pin', pin], { env });
  for (const [key, id] of [
    ['modsign', '01'],
    ['twin', '02'],
    ['twin', '03'],
  ] as const) {
    await keypairgen({ label, pin, env }, 'rsa:2048', key, id);
  }
  const cnf = path.join(dir, 'openssl-token.cnf');
  await writeFile(
    cnf,
    `openssl_conf = oc\n[oc]\nengines = e\n[e]\npkcs11 = p\n[p]\nengine_id = pkcs11\nMODULE_PATH = ${SOFTHSM}\ninit = 0\n[req]\ndistinguished_name = dn\nx509_extensions = ext\n[dn]\n[ext]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=codeSigning\nsubjectKeyIdentifier=hash\n`,
  );
  const certPath = path.join(dir, 'token-cert.pem');
  await certThroughToken({ label, pin, env }, cnf, 'modsign', subject, certPath);
  return { label, pin, env, certPath };
}

/** An ECDSA key generated in the token (`object=<label>`, on `curve`: prime256v1, secp384r1) and its certificate, self-signed through the engine. */
export async function addEcKey(token: TestToken, dir: string, label: string, curve: string): Promise<string> {
  await keypairgen(token, `EC:${curve}`, label, '44');
  const certPath = path.join(dir, `${label}-cert.pem`);
  await certThroughToken(token, path.join(dir, 'openssl-token.cnf'), label, `kfarm token ${label}`, certPath);
  return certPath;
}

/** a key pair generated inside the token, sensitive (never readable out of it) */
async function keypairgen(token: Pick<TestToken, 'label' | 'pin' | 'env'>, keyType: string, label: string, id: string): Promise<void> {
  const argv = ['--module', SOFTHSM, '--token-label', token.label, '--login', '--pin', 'env:P', '--keypairgen', '--key-type', keyType, '--label', label, '--id', id, '--sensitive'];
  const r = await execa('pkcs11-tool', argv, { env: { ...token.env, P: token.pin }, reject: false, stdin: 'ignore' });
  if (r.exitCode !== 0) throw new Error(`pkcs11-tool --keypairgen ${keyType}: ${r.stderr}`);
}

/** the token key `object`'s self-signed certificate, made through OpenSSL's pkcs11 engine (cnf: the engine's openssl config) */
async function certThroughToken(token: Pick<TestToken, 'label' | 'pin' | 'env'>, cnf: string, object: string, subject: string, certPath: string): Promise<void> {
  const key = `pkcs11:token=${token.label};object=${object};type=private`;
  const argv = [
    'req',
    '-new',
    '-x509',
    '-engine',
    'pkcs11',
    '-keyform',
    'engine',
    '-key',
    key,
    '-passin',
    'env:P',
    '-subj',
    `/CN=${subject}`,
    '-days',
    '3650',
    '-sha256',
    '-out',
    certPath,
  ];
  const req = await execa('openssl', argv, { env: { ...token.env, OPENSSL_CONF: cnf, P: token.pin }, reject: false, stdin: 'ignore' });
  if (req.exitCode !== 0) throw new Error(`openssl req through the token (${object}): ${req.stderr}`);
}
