import { KfarmError } from '../errors/kfarm-error.js';

/** --sign-key and --sign-cert go together; the key's passphrase comes as kbuild takes it */
export function signingOption(keyPath: string | undefined, certPath: string | undefined): { signing?: { keyPath: string; certPath: string; pin?: string } } {
  if (keyPath === undefined && certPath === undefined) return {};
  if (keyPath === undefined || certPath === undefined) {
    throw new KfarmError('BAD_OPTION', `${keyPath === undefined ? '--sign-cert' : '--sign-key'} given without ${keyPath === undefined ? '--sign-key' : '--sign-cert'}`, {
      hint: 'Signing needs both: --sign-key key.pem --sign-cert cert.pem (the certificate of that key).',
    });
  }
  const pin = process.env.KBUILD_SIGN_PIN;
  return { signing: { keyPath, certPath, ...(pin ? { pin } : {}) } };
}
