import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseStanzas } from '../../src/archive/deb822.js';
import { loadFromResult, verifyPayloadSchema, verifyResultSchema } from '../../src/job/verify-job.js';
import { parseConsole } from '../../src/verify/console-parse.js';
import { planBoot } from '../../src/verify/initramfs-plan.js';
import { pickKernelDeb, pickSignedKernelDeb } from '../../src/verify/kernel-deb.js';
import { mokCertPem } from '../../src/verify/secure-boot/mok-certs.js';

/**
 * `--secure-boot` (src/verify/secure-boot/, boot.sh's SECURE_BOOT branch): the pure parts. The
 * consoles are trimmed from real boots of Debian's signed 6.1.0-57 and 6.12.107 kernels through
 * OVMF (Secure Boot, Microsoft's keys), shim 16.1 and GRUB 2.06 under TCG, a test key enrolled as a MOK.
 */
const N = '5e1f00d2c0ffee11';
const sbHead = [
  'EFI stub: UEFI Secure Boot is enabled.',
  '[    0.000000] Linux version 6.1.0-57-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)',
  '[    0.000000] Kernel is locked down from EFI Secure Boot; see man kernel_lockdown.7',
  '[    0.000000] secureboot: Secure boot enabled',
  "[    3.486458] integrity: Loaded X.509 cert 'kfarm test A: 57fcd69914089746ee45d856c57ee27a1c1a4fc0'",
  `@@kfarm-${N} boot 4.69`,
];
const sb = (...lines: string[]) => [...sbHead, ...lines].join('\r\n');

describe('parseConsole under --secure-boot', () => {
  it('SecureBoot on and lockdown seen by init, then the module loads: loaded, with both in the verdict', () => {
    const text = sb(
      `@@kfarm-${N} secureboot 1 integrity 1`,
      `@@kfarm-${N} insmod updates/dkms/hello.ko 4.92`,
      `@@kfarm-${N} result updates/dkms/hello.ko 0 4.94`,
      `@@kfarm-${N} done 4.95`,
    );
    expect(parseConsole(text, N, 'ran', { secureBoot: true })).toMatchObject({ verdict: 'loaded', secureBoot: true, lockdown: 'integrity', bootMs: 4690 });
  });

  it('a module signed by a key that is not enrolled: key-rejected, with the kernel line', () => {
    const text = sb(
      `@@kfarm-${N} secureboot 1 integrity 1`,
      `@@kfarm-${N} insmod updates/dkms/hello.ko 6.57`,
      '[    6.540038] Loading of module with unavailable key is rejected',
      "insmod: can't insert '/lib/modules/6.1.0-57-amd64/updates/dkms/hello.ko': Key was rejected by service",
      `@@kfarm-${N} result updates/dkms/hello.ko 129 6.59`,
      `@@kfarm-${N} done 6.60`,
    );
    expect(parseConsole(text, N, 'ran', { secureBoot: true })).toMatchObject({
      verdict: 'load-failed',
      reason: 'key-rejected',
      firstError: 'Loading of module with unavailable key is rejected',
      secureBoot: true,
      lockdown: 'integrity',
    });
  });

  it('an unsigned module: unsigned-rejected (insmod says "Key was rejected" for both; the kernel tells them apart)', () => {
    const text = sb(
      `@@kfarm-${N} secureboot 1 integrity 1`,
      `@@kfarm-${N} insmod updates/dkms/hello.ko 7.69`,
      '[    8.120738] Loading of unsigned module is rejected',
      "insmod: can't insert '/lib/modules/6.1.0-57-amd64/updates/dkms/hello.ko': Key was rejected by service",
      `@@kfarm-${N} result updates/dkms/hello.ko 129 8.18`,
      `@@kfarm-${N} done 8.19`,
    );
    expect(parseConsole(text, N, 'ran', { secureBoot: true })).toMatchObject({
      verdict: 'load-failed',
      reason: 'unsigned-rejected',
      firstError: 'Loading of unsigned module is rejected',
    });
  });

  it('a guest that saw no Secure Boot or no lockdown proves nothing: not-verified secure-boot-off, even when the module loaded', () => {
    const loaded = [`@@kfarm-${N} insmod a.ko 5.0`, `@@kfarm-${N} result a.ko 0 5.1`, `@@kfarm-${N} done 5.1`];
    for (const [report, seen] of [
      [`@@kfarm-${N} secureboot 0 none 0`, 'SecureBoot off, lockdown none'],
      [`@@kfarm-${N} secureboot 1 none 1`, 'SecureBoot on, lockdown none'],
    ] as const) {
      expect(parseConsole(sb(report, ...loaded), N, 'ran', { secureBoot: true })).toMatchObject({
        verdict: 'not-verified',
        reason: 'secure-boot-off',
        firstError: `the guest booted without Secure Boot and lockdown (${seen})`,
      });
    }
    expect(parseConsole(sb(...loaded), N, 'ran', { secureBoot: true })).toMatchObject({ verdict: 'not-verified', reason: 'secure-boot-off' });
  });

  it("only init's first report counts, never one after a module ran (the module could print one), nor another boot's nonce", () => {
    const text = sb(
      `@@kfarm-0000000000000000 secureboot 1 integrity 1`,
      `@@kfarm-${N} insmod a.ko 5.0`,
      `@@kfarm-${N} secureboot 1 confidentiality 1`,
      `@@kfarm-${N} result a.ko 0 5.1`,
      `@@kfarm-${N} done 5.1`,
    );
    expect(parseConsole(text, N, 'ran', { secureBoot: true })).toMatchObject({ verdict: 'not-verified', reason: 'secure-boot-off' });
  });

  it('without efivarfs the kernel\'s own "Secure boot enabled" stands for the variable', () => {
    const text = sb(`@@kfarm-${N} secureboot none confidentiality 1`, `@@kfarm-${N} insmod a.ko 5.0`, `@@kfarm-${N} result a.ko 0 5.1`, `@@kfarm-${N} done 5.1`);
    expect(parseConsole(text, N, 'ran', { secureBoot: true })).toMatchObject({ verdict: 'loaded', secureBoot: true, lockdown: 'confidentiality' });
  });

  it('missing firmware is not-verified no-firmware', () => {
    expect(parseConsole('', N, 'no-firmware', { secureBoot: true })).toMatchObject({ verdict: 'not-verified', reason: 'no-firmware' });
  });
});

describe('pickSignedKernelDeb', () => {
  const sha = (c: string) => c.repeat(64);
  const stanza = (pkg: string, source: string, version: string, hash: string) =>
    parseStanzas(
      `Package: ${pkg}\nSource: ${source}\nVersion: ${version}\nFilename: pool/main/l/${source.split(' ')[0]}/${pkg}_${version}_amd64.deb\nSize: 70591024\nSHA256: ${hash}\n`,
    )[0]!;
  const base = 'http://deb.debian.org/debian-security';
  const stanzas = [
    { stanza: stanza('linux-image-6.1.0-57-amd64', 'linux-signed-amd64 (6.1.192+3)', '6.1.192-3', sha('a')), baseUrl: base },
    { stanza: stanza('linux-image-6.1.0-57-amd64-unsigned', 'linux', '6.1.192-3', sha('b')), baseUrl: base },
    // an old kernel whose linux-image-<kver> was never signed: built by linux itself
    { stanza: stanza('linux-image-4.19.0-27-amd64', 'linux', '4.19.316-1', sha('c')), baseUrl: base },
  ];
  it('takes the linux-image-<kver> built from linux-signed-<arch>, never the unsigned twin that direct boots use', () => {
    expect(pickSignedKernelDeb(stanzas, '6.1.0-57-amd64')).toMatchObject({ package: 'linux-image-6.1.0-57-amd64', sha256: sha('a') });
    expect(pickKernelDeb(stanzas, '6.1.0-57-amd64')).toMatchObject({ package: 'linux-image-6.1.0-57-amd64-unsigned' });
  });
  it('none for a kernel with no signed build (verify-kernel.ts reports it not-verified, no-signed-kernel)', () => {
    expect(pickSignedKernelDeb(stanzas, '4.19.0-27-amd64')).toBeUndefined();
    expect(pickSignedKernelDeb(stanzas, '6.12.107+deb12-amd64')).toBeUndefined();
  });
});

describe('a Secure Boot boot plan and payload', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kfarm-mok-'));
  execFileSync(
    'openssl',
    ['req', '-new', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem'), '-days', '30', '-subj', '/CN=kfarm unit MOK/'],
    {
      stdio: 'ignore',
    },
  );
  execFileSync('openssl', ['x509', '-in', path.join(dir, 'c.pem'), '-outform', 'DER', '-out', path.join(dir, 'c.der')]);
  const pem = readFileSync(path.join(dir, 'c.pem'), 'utf8');

  it('a certificate in DER (signing-cert.der) or PEM becomes the same PEM; anything else is refused naming its source', () => {
    const fromDer = mokCertPem(readFileSync(path.join(dir, 'c.der')), 'c.der');
    expect(fromDer.pem).toBe(pem);
    expect(fromDer.subject).toBe('CN=kfarm unit MOK');
    expect(mokCertPem(Buffer.from(pem), 'c.pem').pem).toBe(pem);
    expect(() => mokCertPem(readFileSync(path.join(dir, 'k.pem')), '--mok-cert k.pem')).toThrow(/--mok-cert k.pem is not an X.509 certificate/);
  });

  it('the plan carries SECURE_BOOT and the MOKs as mok/<n>.pem; a direct boot carries neither', () => {
    const common = { kernel: '6.1.0-57-amd64', arch: 'x86_64', accel: 'tcg' as const, kernelDeb: Buffer.from('deb'), nonce: 'ab', cmdline: '', timeoutSec: 300 };
    const modules = [{ installLocation: '/updates/dkms', fileName: 'hello.ko', data: Buffer.from('ko') }];
    const plan = planBoot({ ...common, modules, secureBoot: true, mokCerts: [pem] });
    expect(plan.env.SECURE_BOOT).toBe('1');
    expect(plan.files.map((f) => f.path)).toEqual(['kernel.deb', 'mok/0.pem', 'mods/updates/dkms/hello.ko']);
    expect(planBoot({ ...common, modules, mokCerts: [pem] }).files.map((f) => f.path)).toEqual(['kernel.deb', 'mods/updates/dkms/hello.ko']);
    expect(() => planBoot({ ...common, arch: 'aarch64', kernel: '6.1.0-57-arm64', modules, secureBoot: true })).toThrow(/x86_64 kernels only/);
  });

  it('the payload takes secureBoot and PEM certificates only; the result carries what the guest saw', () => {
    const payload = {
      schemaVersion: 1,
      kernel: '6.1.0-57-amd64',
      arch: 'x86_64',
      release: 'debian-12',
      debianArch: 'amd64',
      modules: [{ sha256: 'a'.repeat(64), size: 4096, installLocation: '/updates/dkms', fileName: 'hello.ko' }],
      cmdline: '',
      accel: 'auto',
      timeoutSec: 300,
      requestId: randomBytes(16).toString('hex'),
      run: randomBytes(16).toString('hex'),
    };
    expect(verifyPayloadSchema.parse({ ...payload, secureBoot: true, mokCerts: [pem] }).mokCerts).toEqual([pem]);
    expect(verifyPayloadSchema.safeParse({ ...payload, secureBoot: true, mokCerts: [readFileSync(path.join(dir, 'k.pem'), 'utf8')] }).success).toBe(false);
    expect(verifyPayloadSchema.safeParse({ ...payload, secureBoot: true, mokCerts: [`${pem}\n$(reboot)`] }).success).toBe(false);
    const result = verifyResultSchema.parse({
      schemaVersion: 1,
      load: { verdict: 'load-failed', reason: 'unsigned-rejected', accel: 'tcg', secureBoot: true, lockdown: 'integrity' },
      worker: 'h:1',
    });
    expect(loadFromResult(result)).toEqual({ verdict: 'load-failed', reason: 'unsigned-rejected', accel: 'tcg', secureBoot: true, lockdown: 'integrity' });
    expect(verifyResultSchema.safeParse({ ...result, load: { ...result.load, lockdown: 'lax' } }).success).toBe(false);
  });
});
