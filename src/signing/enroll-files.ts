import { createHash } from 'node:crypto';
import { KfarmError } from '../errors/kfarm-error.js';
import { openssl } from './openssl.js';

/** the certificate in DER, as `mokutil --import` takes it */
export const ENROLL_CERT_FILE = 'signing-cert.der';
export const ENROLL_README_FILE = 'ENROLL.md';

/**
 * What a fleet needs to trust the signed modules, written to --out beside them: the signing
 * certificate in DER and a short ENROLL.md (mokutil, reboot, MokManager). The same for a key
 * file and a key in a token: only the certificate is public.
 */
export async function enrollFiles(cert: { certPem: Buffer; subject: string; serial: string }): Promise<{ name: string; data: Buffer }[]> {
  const der = await openssl(['x509', '-inform', 'PEM', '-outform', 'DER'], { input: cert.certPem });
  if (der.exitCode !== 0) throw new KfarmError('COMMAND_FAILED', `openssl cannot write the signing certificate in DER: ${der.stderr.split('\n')[0] ?? ''}`);
  const sha256 = createHash('sha256')
    .update(der.stdout)
    .digest('hex')
    .toUpperCase()
    .replace(/(..)(?!$)/g, '$1:');
  const readme = [
    '# Enrolling the module signing key',
    '',
    `The modules here are signed by \`${cert.subject}\` (serial ${cert.serial}).`,
    `A machine with UEFI Secure Boot loads them once that key's certificate, \`${ENROLL_CERT_FILE}\`, is enrolled as a Machine Owner Key (MOK):`,
    '',
    '```sh',
    `sudo mokutil --import ${ENROLL_CERT_FILE}   # asks for a one-time password`,
    'sudo reboot',
    '```',
    '',
    'At the next boot shim starts MokManager: choose "Enroll MOK", "Continue", "Yes", type the one-time password, then "Reboot".',
    'Check it afterwards:',
    '',
    '```sh',
    `mokutil --test-key ${ENROLL_CERT_FILE}   # "... is already enrolled"`,
    'mokutil --sb-state                  # "SecureBoot enabled"',
    '```',
    '',
    `Before enrolling, compare the certificate's SHA-256 fingerprint with the one your vendor publishes: \`openssl x509 -inform DER -in ${ENROLL_CERT_FILE} -noout -fingerprint -sha256\` prints`,
    '',
    `    ${sha256}`,
    '',
  ].join('\n');
  return [
    { name: ENROLL_CERT_FILE, data: der.stdout },
    { name: ENROLL_README_FILE, data: Buffer.from(readme) },
  ];
}
