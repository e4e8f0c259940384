import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { ensureBaseImage } from '../../src/images/base-image.js';
import { rootLogger } from '../../src/logging/logger.js';
import type { BuildReport, KernelReport } from '../../src/report/report.js';
import { bootKernel } from '../../src/verify/boot-kernel.js';
import { verifyContext, verifyKernel } from '../../src/verify/verify-kernel.js';
import { debian12Kernels, example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';
import { makeSigningKey } from '../helpers/signing-key.js';

/**
 * `--secure-boot` end to end, with real QEMU, Debian's OVMF (Secure Boot on, Microsoft's keys),
 * Debian's signed shim, GRUB and kernels from the archive: each kernel boots as a Secure Boot
 * fleet boots it, the signing certificate enrolled as a MOK, and the guest itself reports
 * SecureBoot and lockdown before loading. On one 6.1 and one 6.12 kernel: hello signed by the
 * enrolled key loads; signed by a key that is not enrolled it is key-rejected; unsigned it is
 * unsigned-rejected, each with the kernel's own line.
 */
const { k61, k612 } = await debian12Kernels();
const kernels = [k61, k612];
let env: Record<string, string>;
let dir: string;
let signedOut: string;
let unsignedOut: string;
let signedBuild: Awaited<ReturnType<typeof kfarm>>;
let unsignedBuild: Awaited<ReturnType<typeof kfarm>>;
const keys: Record<string, { key: string; cert: string }> = {};

const readReport = async (out: string) => JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
const row = (report: BuildReport, kernel: string): KernelReport => {
  const found = report.kernels.find((k) => k.kernel === kernel);
  if (!found) throw new Error(`no row for ${kernel}`);
  return found;
};

async function makeKey(name: string): Promise<{ key: string; cert: string }> {
  return makeSigningKey(dir, name, `kfarm e2e ${name}`);
}

beforeAll(async () => {
  env = await isolatedEnv('verify-sb');
  dir = await tempDir('verify-sb-keys');
  keys.a = await makeKey('mok-a');
  keys.b = await makeKey('mok-b');
  signedOut = await tempDir('verify-sb-signed');
  unsignedOut = await tempDir('verify-sb-unsigned');
  // both builds and their four boots at once (TCG boots are CPU-bound: two per process on two cores)
  [signedBuild, unsignedBuild] = await Promise.all([
    kfarm(
      ['build', example('hello'), '-k', kernels.join(','), '-o', signedOut, '--sign-key', keys.a.key, '--sign-cert', keys.a.cert, '--verify', 'load', '--secure-boot'],
      env,
      1_200_000,
    ),
    // --accel tcg: this one and the next run skip the KVM attempt (the first run shows it, and its fallback where KVM lacks SMM)
    kfarm(['build', example('hello'), '-k', kernels.join(','), '-o', unsignedOut, '--verify', 'load', '--secure-boot', '--accel', 'tcg'], env, 1_200_000),
  ]);
}, 1_200_000);

describe('kfarm build --verify load --secure-boot', () => {
  it('hello signed by the key enrolled as a MOK loads on 6.1 and 6.12, the guest reporting SecureBoot on and lockdown', async () => {
    expect(signedBuild.exitCode, signedBuild.stderr).toBe(0);
    expect(signedBuild.stderr).toContain('secure boot: enrolling CN=kfarm e2e mok-a (signing-cert.der) as a MOK');
    const report = await readReport(signedOut);
    for (const kernel of kernels) {
      const load = row(report, kernel).load;
      expect(load, kernel).toMatchObject({ verdict: 'loaded', secureBoot: true, lockdown: 'integrity', log: `logs/load/hello/${kernel}.log` });
      console.log(`secure boot ${kernel}: ${load?.accel} boot ${load?.bootMs} ms, load ${load?.loadMs} ms`);
      const console_ = await readFile(path.join(signedOut, load?.log ?? ''), 'utf8');
      // the chain as booted: shim's EFI stub check, the kernel's own view, the MOK as the kernel loaded it
      expect(console_).toContain('EFI stub: UEFI Secure Boot is enabled.');
      expect(console_).toContain(`Linux version ${kernel}`);
      expect(console_).toMatch(/secureboot: Secure boot enabled/);
      expect(console_).toMatch(/Kernel is locked down from EFI Secure Boot/);
      expect(console_).toMatch(/integrity: Loaded X\.509 cert 'kfarm e2e mok-a/);
      expect(console_).toMatch(/hello: hello from kfarm/);
      expect(console_).toMatch(/kfarm-verify: secure boot chain: shim-signed \S+,shim-helpers-amd64-signed \S+,grub-efi-amd64-signed \S+,ovmf \S+,python3-virt-firmware \S+/);
    }
    expect(signedBuild.stdout).toMatch(/loaded \((kvm|tcg), secure boot\)/);
    const html = await readFile(path.join(signedOut, 'report.html'), 'utf8');
    expect(html).toContain('Secure Boot on, lockdown integrity');
  });

  it('an unsigned hello is refused under lockdown: unsigned-rejected with the kernel line (exit 1)', async () => {
    expect(unsignedBuild.exitCode, unsignedBuild.stderr).toBe(1);
    expect(unsignedBuild.stderr).toMatch(/holds no signing-cert\.der .* no MOK enrolled/);
    const report = await readReport(unsignedOut);
    for (const kernel of kernels) {
      expect(row(report, kernel).load, kernel).toMatchObject({
        verdict: 'load-failed',
        reason: 'unsigned-rejected',
        firstError: 'Loading of unsigned module is rejected',
        secureBoot: true,
        lockdown: 'integrity',
      });
    }
  });
});

describe('kfarm verify --secure-boot --mok-cert', () => {
  it('hello signed by a key that is not enrolled (another MOK is): key-rejected with the kernel line (exit 1)', async () => {
    const verified = await kfarm(['verify', signedOut, '--secure-boot', '--mok-cert', keys.b?.cert ?? '', '--accel', 'tcg'], env, 900_000);
    expect(verified.exitCode, verified.stderr).toBe(1);
    const report = await readReport(signedOut);
    for (const kernel of kernels) {
      const load = row(report, kernel).load;
      expect(load, kernel).toMatchObject({
        verdict: 'load-failed',
        reason: 'key-rejected',
        firstError: 'Loading of module with unavailable key is rejected',
        secureBoot: true,
        lockdown: 'integrity',
      });
      expect(await readFile(path.join(signedOut, load?.log ?? ''), 'utf8')).toMatch(/integrity: Loaded X\.509 cert 'kfarm e2e mok-b/);
    }
    expect(verified.stdout).toMatch(/key-rejected: Loading of module with unavailable key is rejected/);
  }, 900_000);

  it('bad input: --mok-cert that is no certificate, --secure-boot without --verify load (exit 2, before any build)', async () => {
    const notCert = await kfarm(['verify', signedOut, '--secure-boot', '--mok-cert', keys.a?.key ?? ''], env);
    expect(notCert.exitCode).toBe(2);
    expect(notCert.stderr).toContain(`--mok-cert ${keys.a?.key ?? ''} is not an X.509 certificate`);
    const noVerify = await kfarm(['build', example('hello'), '-k', k61, '-o', await tempDir('verify-sb-noverify'), '--secure-boot'], env);
    expect(noVerify.exitCode).toBe(2);
    expect(noVerify.stderr).toContain('--secure-boot goes with --verify load');
  });
});

describe('what cannot be verified under Secure Boot', () => {
  it('a kernel the archive has no signed build of: not-verified, no-signed-kernel, with the reason', async () => {
    const ctx = await verifyContext({
      accel: 'tcg',
      cmdline: '',
      stateDir: env.KFARM_STATE_DIR ?? '',
      runtime: new DockerRuntime(),
      logger: rootLogger,
      say: () => {},
      secureBoot: true,
    });
    const { load } = await verifyKernel(ctx, {
      kernel: '6.1.0-999-amd64',
      arch: 'x86_64',
      release: 'debian-12',
      debianArch: 'amd64',
      modules: [{ installLocation: '/updates/dkms', fileName: 'hello.ko', data: Buffer.from('x') }],
    });
    expect(load).toEqual({
      verdict: 'not-verified',
      reason: 'no-signed-kernel',
      firstError: 'the debian-12 archive has no signed build of 6.1.0-999-amd64 (linux-image-6.1.0-999-amd64 from linux-signed-amd64) for Secure Boot',
    });
  }, 300_000);

  it('an image without the firmware: not-verified, no-firmware, naming the Debian package', async () => {
    const runtime = new DockerRuntime();
    // the bootstrapped bookworm root the verify image starts from: bash and tar, no OVMF
    const base = await ensureBaseImage(runtime, rootLogger, () => {}, 'bookworm');
    const result = await bootKernel(runtime, base, {
      kernel: k61,
      arch: 'x86_64',
      accel: 'tcg',
      kernelDeb: Buffer.from('not a deb'),
      modules: [{ installLocation: '/updates/dkms', fileName: 'hello.ko', data: Buffer.from('x') }],
      cmdline: '',
      timeoutSec: 60,
      secureBoot: true,
      mokCerts: [],
    });
    expect(result).toMatchObject({
      verdict: 'not-verified',
      reason: 'no-firmware',
      firstError: `the verify image ${base} lacks the Secure Boot firmware or tools of Debian package ovmf`,
    });
    expect(result.console).toContain('missing /usr/share/OVMF/OVMF_CODE_4M.secboot.fd (Debian package ovmf)');
  }, 600_000);
});
