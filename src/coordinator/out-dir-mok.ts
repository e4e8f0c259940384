import { readFile } from 'node:fs/promises';
import type { OutDirView } from '../report/out-dir.js';
import { ENROLL_CERT_FILE } from '../signing/enroll-files.js';
import { mokCertPem } from '../verify/secure-boot/mok-certs.js';

/**
 * `--secure-boot` without `--mok-cert`: the certificate a signed build wrote to its out dir
 * (signing-cert.der, the one a fleet enrols), else none (an unsigned build: its modules are then
 * refused, which is what such a fleet would do).
 */
export async function outDirMokCerts(view: OutDirView, say: (line: string) => void): Promise<string[]> {
  const data = await readFile(view.locate(ENROLL_CERT_FILE)).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!data) {
    say(`secure boot: ${view.dir} holds no ${ENROLL_CERT_FILE} (an unsigned build?) and no --mok-cert was given: no MOK enrolled`);
    return [];
  }
  const cert = mokCertPem(data, `${view.dir}/${ENROLL_CERT_FILE}`);
  say(`secure boot: enrolling ${cert.subject} (${ENROLL_CERT_FILE}) as a MOK`);
  return [cert.pem];
}
