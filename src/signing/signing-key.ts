import { readFile } from 'node:fs/promises';
import { KfarmError, describeError } from '../errors/kfarm-error.js';
import { openssl } from './openssl.js';

/**
 * The signing key and certificate, read and checked on this host with the real openssl: an
 * unencrypted PEM key (sign-file's only key format without a PIN prompt) and a PEM certificate
 * whose public key is the key's. The key's bytes stay in this process's memory; they go to
 * the signing container on its stdin only.
 */
export interface SigningKey {
  keyPem: Buffer;
  certPem: Buffer;
  /** the certificate's subject, as openssl prints it (RFC 2253) */
  subject: string;
  /** the certificate's serial in hex, which modinfo shows as sig_key */
  serial: string;
}

export interface SigningPaths {
  keyPath: string;
  certPath: string;
  /** KBUILD_SIGN_PIN, as kbuild names it: the passphrase of an encrypted key (default: from process.env) */
  pin?: string | undefined;
}

const bad = (message: string, hint: string, context: Record<string, string>) => new KfarmError('BAD_OPTION', message, { context, hint });

async function readInput(file: string, what: '--sign-key' | '--sign-cert'): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw bad(`cannot read the ${what === '--sign-key' ? 'signing key' : 'signing certificate'} ${file}: ${describeError(err)}`, `Give ${what} a readable file.`, {
      [what.slice(2)]: file,
    });
  }
}

export async function loadSigningKey(paths: SigningPaths): Promise<SigningKey> {
  const { keyPath, certPath } = paths;
  const pin = paths.pin ?? process.env.KBUILD_SIGN_PIN;
  const [keyFile, certFile] = await Promise.all([readInput(keyPath, '--sign-key'), readInput(certPath, '--sign-cert')]);

  const keyText = keyFile.toString('latin1');
  if (/^pkcs11:/.test(keyText.trim())) {
    throw bad(`the signing key ${keyPath} is a file holding a PKCS#11 URI`, "Give the URI itself: --sign-key 'pkcs11:token=...;object=...' (the PIN in KFARM_PKCS11_PIN).", {
      'sign-key': keyPath,
    });
  }
  const encrypted = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,ENCRYPTED/.test(keyText);
  if (encrypted && pin === undefined) {
    throw bad(
      `the signing key ${keyPath} is encrypted with a passphrase`,
      'Set KBUILD_SIGN_PIN to its passphrase (as kbuild does), or write an unencrypted copy in a safe place: `openssl pkey -in key.pem -out key-plain.pem` (it asks for the passphrase).',
      { 'sign-key': keyPath },
    );
  }
  // Normalised to unencrypted PEM here, so the container never needs the passphrase; the
  // PIN reaches openssl through its environment, never its arguments.
  const keyOut = await openssl(
    ['pkey', '-in', keyPath, '-passin', pin === undefined ? 'pass:' : 'env:KBUILD_SIGN_PIN'],
    pin === undefined ? {} : { env: { KBUILD_SIGN_PIN: pin } },
  );
  if (keyOut.exitCode !== 0 || !keyOut.stdout.includes('-----BEGIN PRIVATE KEY-----')) {
    throw bad(
      `openssl cannot read ${keyPath} as a private key${encrypted ? ' with the passphrase in KBUILD_SIGN_PIN' : ''}: ${firstLine(keyOut.stderr)}`,
      encrypted ? 'Check KBUILD_SIGN_PIN.' : 'Give --sign-key the private key (PEM or DER) that belongs to --sign-cert.',
      { 'sign-key': keyPath },
    );
  }
  const keyPem = keyOut.stdout;

  const cert = await loadCertificate(certPath, certFile);
  const { certPem } = cert;

  const [certPub, keyPub] = await Promise.all([openssl(['x509', '-noout', '-pubkey'], { input: certPem }), openssl(['pkey', '-pubout'], { input: keyPem })]);
  if (certPub.exitCode !== 0 || keyPub.exitCode !== 0) {
    throw bad(
      `openssl cannot read the public key of ${certPub.exitCode !== 0 ? certPath : keyPath}: ${firstLine(certPub.stderr || keyPub.stderr)}`,
      'Check the files with `openssl x509 -noout -text` and `openssl pkey -noout -text`.',
      { 'sign-key': keyPath, 'sign-cert': certPath },
    );
  }
  if (!certPub.stdout.equals(keyPub.stdout)) {
    throw bad(
      `the certificate ${certPath} does not match the key ${keyPath}: their public keys differ`,
      'Give --sign-cert the certificate made from --sign-key (compare `openssl x509 -noout -pubkey -in cert` with `openssl pkey -pubout -in key`).',
      { 'sign-key': keyPath, 'sign-cert': certPath },
    );
  }
  return { keyPem, ...cert };
}

/** --sign-cert in PEM or DER, as PEM, with the subject and serial modinfo shows (also for a key in a token) */
export async function loadCertificate(certPath: string, file?: Buffer): Promise<{ certPem: Buffer; subject: string; serial: string }> {
  const certFile = file ?? (await readInput(certPath, '--sign-cert'));
  let certOut = await openssl(['x509', '-inform', 'PEM', '-outform', 'PEM'], { input: certFile });
  if (certOut.exitCode !== 0) certOut = await openssl(['x509', '-inform', 'DER', '-outform', 'PEM'], { input: certFile });
  if (certOut.exitCode !== 0) {
    throw bad(
      `${certPath} is not an X.509 certificate in PEM or DER: ${firstLine(certOut.stderr)}`,
      'Give --sign-cert the certificate of the signing key (the one enrolled with `mokutil --import`).',
      { 'sign-cert': certPath },
    );
  }
  const certPem = certOut.stdout;

  const info = await openssl(['x509', '-noout', '-subject', '-serial', '-nameopt', 'RFC2253'], { input: certPem });
  const field = (name: string) => new RegExp(`^${name}=\\s*(.*)$`, 'm').exec(info.stdout.toString('utf8'))?.[1]?.trim() ?? '';
  return { certPem, subject: field('subject'), serial: field('serial') };
}

/** The public key's kind as module signing cares: RSA, or ECDSA on a NIST curve the kernel verifies (P-256, P-384). */
export type CertKeyType = { type: 'rsa' } | { type: 'ec'; curve: 'P-256' | 'P-384' } | { type: 'other'; name: string };

/** Pure: `openssl x509 -noout -text`'s public key lines → the key's type. */
export function parseCertKeyType(text: string): CertKeyType {
  const algorithm = /Public Key Algorithm:\s*(\S+)/.exec(text)?.[1] ?? 'unknown';
  if (algorithm === 'rsaEncryption') return { type: 'rsa' };
  if (algorithm !== 'id-ecPublicKey') return { type: 'other', name: algorithm };
  const curve = /NIST CURVE:\s*(P-\d+)/.exec(text)?.[1];
  return curve === 'P-256' || curve === 'P-384' ? { type: 'ec', curve } : { type: 'other', name: `EC ${curve ?? /ASN1 OID:\s*(\S+)/.exec(text)?.[1] ?? 'of an unknown curve'}` };
}

/** The certificate's (and so the key's) type, read by the host's openssl. */
export async function certKeyType(certPem: Buffer): Promise<CertKeyType> {
  const r = await openssl(['x509', '-noout', '-text'], { input: certPem });
  return parseCertKeyType(r.stdout.toString('utf8'));
}

export const firstLine = (text: string) =>
  text
    .split('\n')
    .find((l) => l.trim())
    ?.trim() ?? 'no reason given';
