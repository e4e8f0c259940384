import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { KfarmError, describeError } from '../../errors/kfarm-error.js';
import { MOK_CERT_PEM } from '../../job/verify-job.js';

/** a MOK list holds a few certificates; more is a mistake, and each goes into every boot's payload */
export const MAX_MOK_CERTS = 8;

/**
 * Pure: one X.509 certificate (DER, as `mokutil --import` takes it and as `--sign-key` writes
 * signing-cert.der, or PEM) as the PEM that virt-fw-vars enrols; anything else is refused with
 * where it came from.
 */
export function mokCertPem(data: Buffer, from: string): { pem: string; subject: string } {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(data);
  } catch (err) {
    throw new KfarmError('BAD_OPTION', `${from} is not an X.509 certificate (DER or PEM): ${describeError(err)}`, {
      hint: 'Give the module signing certificate, e.g. the signing-cert.der that --sign-key writes to --out.',
    });
  }
  const pem = cert.toString().replace(/\r/g, '').trimEnd() + '\n';
  if (!MOK_CERT_PEM.test(pem)) throw new KfarmError('BAD_OPTION', `${from}: the certificate is too large to enrol as a MOK (${pem.length} bytes of PEM)`);
  return { pem, subject: cert.subject.replace(/\n/g, ', ') };
}

/** `--mok-cert FILE[,FILE]`: each file read and checked. */
export async function readMokCerts(files: readonly string[]): Promise<{ pem: string; subject: string }[]> {
  if (files.length > MAX_MOK_CERTS) throw new KfarmError('BAD_OPTION', `--mok-cert takes at most ${MAX_MOK_CERTS} certificates, not ${files.length}`);
  return Promise.all(
    files.map(async (file) => {
      const data = await readFile(file).catch((err: unknown) => {
        throw new KfarmError('BAD_OPTION', `--mok-cert ${file} cannot be read: ${describeError(err)}`);
      });
      return mokCertPem(data, `--mok-cert ${file}`);
    }),
  );
}
