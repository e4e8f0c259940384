import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { refuseUnverifiable, type KernelSigner } from '../../src/signing/signing-setup.js';
import { certKeyType } from '../../src/signing/signing-key.js';

/** A self-signed certificate of a fresh key of this kind, made by the real openssl. */
async function certOf(newkey: string[]): Promise<Buffer> {
  const r = await execa('openssl', ['req', '-new', '-nodes', '-x509', ...newkey, '-keyout', '/dev/null', '-subj', '/CN=kfarm key type', '-days', '1'], {
    encoding: 'buffer',
    stripFinalNewline: false,
  });
  return Buffer.from(r.stdout);
}

const signer = (kernel: string, ecdsa: boolean): KernelSigner => ({
  kernel,
  image: `kfarm/debian-12:${kernel}`,
  signFile: '/usr/lib/linux-kbuild-6.1/scripts/sign-file',
  hash: 'sha256',
  ecdsa,
});
const k61 = signer('6.1.0-57-amd64', false);
const k612 = signer('6.12.43+deb12-amd64', true);

describe('module signing keys the kernels can verify', () => {
  it('reads RSA, ECDSA P-256 and P-384, and names other keys (Ed25519, secp256k1)', async () => {
    expect(await certKeyType(await certOf(['-newkey', 'rsa:2048']))).toEqual({ type: 'rsa' });
    expect(await certKeyType(await certOf(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']))).toEqual({ type: 'ec', curve: 'P-256' });
    expect(await certKeyType(await certOf(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']))).toEqual({ type: 'ec', curve: 'P-384' });
    expect(await certKeyType(await certOf(['-newkey', 'ed25519']))).toEqual({ type: 'other', name: 'ED25519' });
    expect(await certKeyType(await certOf(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1']))).toEqual({ type: 'other', name: 'EC secp256k1' });
  }, 30_000);

  it('an RSA key signs for every kernel; ECDSA only for kernels with CONFIG_CRYPTO_ECDSA (not Debian 12 6.1), named; Ed25519 never', () => {
    expect(() => refuseUnverifiable({ type: 'rsa' }, [k61, k612], 'key.pem')).not.toThrow();
    expect(() => refuseUnverifiable({ type: 'ec', curve: 'P-256' }, [k612], 'key.pem')).not.toThrow();
    expect(() => refuseUnverifiable({ type: 'ec', curve: 'P-384' }, [k61, k612], 'pkcs11:token=t;object=k')).toThrow(
      /ECDSA P-384 key, but 6\.1\.0-57-amd64 cannot verify ECDSA module signatures \(CONFIG_CRYPTO_ECDSA is not set\)$/,
    );
    expect(() => refuseUnverifiable({ type: 'other', name: 'ED25519' }, [k612], 'key.pem')).toThrow(/a ED25519 key cannot sign kernel modules/);
  });
});
