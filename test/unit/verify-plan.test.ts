import { describe, expect, it } from 'vitest';
import { planBoot, type GuestModule } from '../../src/verify/initramfs-plan.js';

const deb = Buffer.from('deb');
const mod = (installLocation: string, fileName: string): GuestModule => ({ installLocation, fileName, data: Buffer.from(fileName) });
const base = { kernel: '6.1.0-57-amd64', arch: 'x86_64', accel: 'tcg' as const, kernelDeb: deb, nonce: 'abcd', cmdline: '', timeoutSec: 300 };

describe('planBoot', () => {
  it('puts the modules where dkms installs them, below /lib/modules/<kver>, and the kernel package beside them', () => {
    const plan = planBoot({ ...base, modules: [mod('/updates/dkms', 'hello.ko'), mod('/updates/dkms', 'other.ko.xz')] });
    expect(plan.files.map((f) => f.path)).toEqual(['kernel.deb', 'mods/updates/dkms/hello.ko', 'mods/updates/dkms/other.ko.xz']);
    expect(plan.env).toMatchObject({ KVER: '6.1.0-57-amd64', GUEST_ARCH: 'x86_64', ACCEL: 'tcg', NONCE: 'abcd', BOOT_TIMEOUT: '300', CMDLINE_EXTRA: '' });
  });

  it('passes kernel parameters such as module.sig_enforce=1', () => {
    expect(planBoot({ ...base, cmdline: 'module.sig_enforce=1', modules: [mod('/updates/dkms', 'hello.ko')] }).env.CMDLINE_EXTRA).toBe('module.sig_enforce=1');
  });

  it('refuses a command line with shell or quoting characters', () => {
    expect(() => planBoot({ ...base, cmdline: 'a"; rm -rf /', modules: [mod('/updates/dkms', 'hello.ko')] })).toThrow(/--cmdline/);
  });

  it('refuses a location or file name that would leave the module tree', () => {
    expect(() => planBoot({ ...base, modules: [mod('/updates/../../etc', 'hello.ko')] })).toThrow(/unsafe install location/);
    expect(() => planBoot({ ...base, modules: [mod('/updates/dkms', '../hello.ko')] })).toThrow(/unsafe install location/);
  });

  it('refuses arches it has no QEMU for, and an empty module list', () => {
    expect(() => planBoot({ ...base, arch: 'riscv64', modules: [mod('/updates/dkms', 'hello.ko')] })).toThrow(/cannot boot riscv64/);
    expect(() => planBoot({ ...base, modules: [] })).toThrow(/no built modules/);
  });
});
