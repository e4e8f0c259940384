import { isValidLocation } from '../dkms/names.js';
import { KfarmError } from '../errors/kfarm-error.js';

/** One built module as it goes into the guest: dkms's install location below /lib/modules/<kver>, and its file. */
export interface GuestModule {
  /** `/updates/dkms` (dkms's default on Debian) or DEST_MODULE_LOCATION's equivalent */
  installLocation: string;
  fileName: string;
  data: Buffer;
}

export type Accel = 'kvm' | 'tcg';

export interface BootPlan {
  /** files of the container's input tar: the kernel package and mods/<location>/<file> */
  files: Array<{ path: string; data: Buffer }>;
  env: Record<string, string>;
}

/** the guest's memory: enough for Debian's generic kernels and an initramfs of a few modules */
export const GUEST_MEM_MB = 512;

/**
 * Pure: what the verify container is given for one boot. Modules go where dkms installs them
 * (/lib/modules/<kver>/updates/dkms/ by default), so depmod and modprobe in the container see
 * the tree a target machine would have; boot.sh adds their in-tree dependencies in depmod's order.
 */
export function planBoot(input: {
  kernel: string;
  arch: string;
  accel: Accel;
  kernelDeb: Buffer;
  modules: readonly GuestModule[];
  nonce: string;
  cmdline: string;
  timeoutSec: number;
  /** boot through OVMF (Secure Boot, Microsoft's keys), shim and GRUB; kernelDeb is then the signed linux-image */
  secureBoot?: boolean;
  /** PEM certificates enrolled as MOKs in the boot's copy of the variable store */
  mokCerts?: readonly string[];
}): BootPlan {
  if (input.modules.length === 0) throw new KfarmError('BAD_OPTION', `no built modules to load on ${input.kernel}`);
  if (input.arch !== 'x86_64' && input.arch !== 'aarch64') {
    throw new KfarmError('BAD_OPTION', `kfarm cannot boot ${input.arch} kernels (${input.kernel})`, { hint: 'Load verification boots x86_64 and aarch64 kernels.' });
  }
  if (!/^[A-Za-z0-9 ._=,:+-]*$/.test(input.cmdline) || input.cmdline.length > 512) {
    throw new KfarmError('BAD_OPTION', `--cmdline ${JSON.stringify(input.cmdline.slice(0, 80))} holds characters a kernel command line option does not need`, {
      hint: 'Give kernel parameters such as module.sig_enforce=1 (letters, digits, . _ = , : + -, spaces).',
    });
  }
  if (input.secureBoot && input.arch !== 'x86_64') {
    throw new KfarmError('BAD_OPTION', `--secure-boot boots x86_64 kernels only, not ${input.kernel}`);
  }
  const seen = new Set<string>();
  const files = [{ path: 'kernel.deb', data: input.kernelDeb }];
  if (input.secureBoot) (input.mokCerts ?? []).forEach((pem, i) => files.push({ path: `mok/${i}.pem`, data: Buffer.from(pem) }));
  for (const m of input.modules) {
    const location = m.installLocation
      .split('/')
      .filter((p) => p !== '')
      .join('/');
    if (!isValidLocation(location) || !/^[A-Za-z0-9_][A-Za-z0-9_.+-]*\.ko(\.xz|\.zst|\.gz)?$/.test(m.fileName)) {
      throw new KfarmError('BAD_OPTION', `module ${JSON.stringify(m.fileName.slice(0, 80))} has an unsafe install location ${JSON.stringify(m.installLocation.slice(0, 120))}`);
    }
    const target = `mods/${location}/${m.fileName}`;
    if (seen.has(target)) continue;
    seen.add(target);
    files.push({ path: target, data: m.data });
  }
  return {
    files,
    env: {
      KVER: input.kernel,
      GUEST_ARCH: input.arch,
      ACCEL: input.accel,
      NONCE: input.nonce,
      MEM_MB: String(GUEST_MEM_MB),
      BOOT_TIMEOUT: String(input.timeoutSec),
      CMDLINE_EXTRA: input.cmdline,
      SECURE_BOOT: input.secureBoot ? '1' : '0',
      LANG: 'C.UTF-8',
    },
  };
}
