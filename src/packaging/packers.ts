import { bmdebPacker } from './bmdeb/bmdeb-packer.js';
import { dkmsDebPacker } from './dkms-deb/dkms-deb-packer.js';
import { dkmsRpmPacker } from './dkms-rpm/dkms-rpm-packer.js';
import { kmmPacker } from './kmm/kmm-packer.js';
import { kmodRpmPacker } from './kmod-rpm/kmod-rpm-packer.js';
import type { PackFormat, Packer } from './packer.js';

/**
 * Every format kfarm writes besides the DKMS tarballs, by name. The DKMS tarballs are not a
 * Packer here: `kfarm build` always writes them (they are the build's results, which
 * `kfarm pack` reads back), the other formats are made from them.
 */
export const PACKERS: Partial<Record<PackFormat, Packer>> = {
  'kmod-rpm': kmodRpmPacker,
  'dkms-rpm': dkmsRpmPacker,
  bmdeb: bmdebPacker,
  'dkms-deb': dkmsDebPacker,
  kmm: kmmPacker,
};

export const PACKABLE_FORMATS = (): PackFormat[] => Object.keys(PACKERS) as PackFormat[];
