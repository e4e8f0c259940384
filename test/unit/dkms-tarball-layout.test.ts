import { describe, expect, it } from 'vitest';
import { binariesOnlyLayout, fullLayout, fullTarballName, perKernelTarballName } from '../../src/packaging/dkms-tarball/layout.js';
import { jobKey } from '../../src/job/job-key.js';
import { buildOptions } from '../../src/config/build-options.js';
import type { JobPayload } from '../../src/job/job-payload.js';

const pkg = { name: 'hello', version: '1.0.0', dkmsConf: Buffer.from('PACKAGE_NAME=hello\n') };
const k = (kernel: string) => ({ kernel, arch: 'x86_64', modules: [{ fileName: 'hello.ko', data: Buffer.from(kernel) }], makeLog: Buffer.from('log') });

describe('DKMS tarball layout', () => {
  it('names files the way dkms mktarball and common.postinst do', () => {
    expect(perKernelTarballName(pkg, '6.1.0-56-amd64', 'x86_64')).toBe('hello-1.0.0-kernel6.1.0-56-amd64-x86_64.dkms.tar.gz');
    expect(fullTarballName(pkg)).toBe('hello-1.0.0.dkms.tar.gz');
  });

  it('binaries-only: one kernel, dkms_dbversion, dkms_binaries_only with name and version', () => {
    const paths = binariesOnlyLayout(pkg, k('6.1.0-56-amd64')).map((e) => e.path);
    expect(paths).toContain('dkms_main_tree/dkms_dbversion');
    expect(paths).toContain('dkms_main_tree/6.1.0-56-amd64/x86_64/module/hello.ko');
    expect(paths).toContain('dkms_main_tree/6.1.0-56-amd64/x86_64/log/make.log');
    expect(paths).toContain('dkms_binaries_only/dkms.conf');
    expect(paths).toContain('dkms_binaries_only/PACKAGE_NAME');
    expect(paths.some((p) => p.startsWith('dkms_source_tree'))).toBe(false);
  });

  it('keeps a compressed module under its own name and the kernel .config next to make.log, as dkms 3.0 stores them', () => {
    const kernel = { ...k('6.12.117+deb12-amd64'), modules: [{ fileName: 'hello.ko.xz', data: Buffer.from('xz') }], kernelConfig: Buffer.from('CONFIG_MODULES=y\n') };
    const entries = binariesOnlyLayout(pkg, kernel);
    const base = 'dkms_main_tree/6.12.117+deb12-amd64/x86_64';
    expect(entries.map((e) => e.path)).toEqual(expect.arrayContaining([`${base}/module/hello.ko.xz`, `${base}/log/.config`, `${base}/log/make.log`]));
    expect(entries.filter((e) => e.path === `${base}/log`)).toHaveLength(1);
  });

  it('full: every kernel, not only the first (unlike dkms 3.0.10 mktarball), plus the source tree', () => {
    const source = [{ path: 'dkms.conf', type: 'file' as const, mode: 0o644, data: pkg.dkmsConf }];
    const paths = fullLayout([k('6.1.0-55-amd64'), k('6.12.117+deb12-amd64')], source).map((e) => e.path);
    expect(paths).toContain('dkms_main_tree/6.1.0-55-amd64/x86_64/module/hello.ko');
    expect(paths).toContain('dkms_main_tree/6.12.117+deb12-amd64/x86_64/module/hello.ko');
    expect(paths).toContain('dkms_source_tree/dkms.conf');
  });
});

describe('job keys', () => {
  const payload: JobPayload = {
    schemaVersion: 1,
    sourceSha256: 'a'.repeat(64),
    kernel: '6.1.0-56-amd64',
    arch: 'x86_64',
    image: 'debian-12',
    imageRef: 'kfarm/debian-12:latest',
    imageId: 'sha256:1',
    driverSha256: 'd',
    options: buildOptions(),
    buildId: 'one',
  };
  it('ignores the build id and key order, and changes with anything decisive', () => {
    expect(jobKey({ ...payload, buildId: 'two' })).toBe(jobKey(payload));
    expect(jobKey({ ...payload, kernel: '6.1.0-55-amd64' })).not.toBe(jobKey(payload));
    expect(jobKey({ ...payload, options: buildOptions({ timeoutSec: 5 }) })).not.toBe(jobKey(payload));
    expect(jobKey({ ...payload, imageId: 'sha256:2' })).not.toBe(jobKey(payload));
    expect(jobKey({ ...payload, driverSha256: 'e' })).not.toBe(jobKey(payload));
    expect(jobKey(payload)).toMatch(/^[0-9a-f]{64}$/);
  });
});
