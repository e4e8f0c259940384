import { KfarmError } from '../errors/kfarm-error.js';

/**
 * What a DNF repository kfarm publishes tells its clients: the `.repo` file (dnf.conf(5)) that
 * turns on both checks, package signatures (gpgcheck) and the signed repomd.xml
 * (repo_gpgcheck), with the public key served beside the repository; and the public key
 * itself, ASCII-armored, the form dnf's and rpm's key import read. Pure.
 */
export const DNF_KEY_FILE = 'RPM-GPG-KEY-kfarm';
export const DNF_REPO_ID = 'kfarm';

export interface DnfRepoFileOptions {
  /** the section name, what `dnf --repo` takes; default `kfarm` */
  id?: string;
  /** where clients reach the repository: http(s)://... or file:///... */
  baseUrl: string;
}

export function dnfRepoFile(options: DnfRepoFileOptions): string {
  const id = options.id ?? DNF_REPO_ID;
  const base = options.baseUrl.replace(/\/+$/, '');
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(id)) throw new KfarmError('BAD_OPTION', `DNF repository id ${JSON.stringify(id.slice(0, 80))}: letters, digits and _ . : - only`);
  if (/[\s\n]/.test(base) || !/^(https?|file|ftp):\/\//.test(base))
    throw new KfarmError('BAD_OPTION', `DNF repository URL ${JSON.stringify(base.slice(0, 200))} is not an http(s), ftp or file URL`, {
      hint: 'Give the URL clients reach the repository at, e.g. https://example.org/kfarm/rpm.',
    });
  return [`[${id}]`, 'name=kernel modules built by kfarm', `baseurl=${base}`, 'enabled=1', 'gpgcheck=1', 'repo_gpgcheck=1', `gpgkey=${base}/${DNF_KEY_FILE}`, ''].join('\n');
}

/** RFC 4880 §6: an OpenPGP public key, binary, as an armored PUBLIC KEY BLOCK (base64, CRC-24). */
export function armorPublicKey(binary: Buffer): string {
  const lines = binary.toString('base64').match(/.{1,64}/g) ?? [];
  const crc = Buffer.alloc(3);
  crc.writeUIntBE(crc24(binary), 0, 3);
  return ['-----BEGIN PGP PUBLIC KEY BLOCK-----', '', ...lines, `=${crc.toString('base64')}`, '-----END PGP PUBLIC KEY BLOCK-----', ''].join('\n');
}

function crc24(data: Buffer): number {
  let crc = 0xb704ce;
  for (const byte of data) {
    crc ^= byte << 16;
    for (let i = 0; i < 8; i++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= 0x1864cfb;
    }
  }
  return crc & 0xffffff;
}
