import { describe, expect, it } from 'vitest';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { rpmKernelEvr, rpmNamePart, rpmVersion } from '../../src/packaging/kmod-rpm/rpm-names.js';
import { depmodScript, kmodPackageName, kmodRpmFileName, kmodRpmPlan } from '../../src/packaging/kmod-rpm/kmod-spec.js';
import { dkmsRpmFileName, dkmsRpmPlan, kernelTarballEntries, tarballKey } from '../../src/packaging/dkms-rpm/dkms-rpm-spec.js';
import type { PackInput, PackKernel } from '../../src/packaging/packer.js';

const kernel = (k: string, file: string, arch = 'x86_64'): PackKernel => ({
  kernel: k,
  arch,
  debianArch: arch === 'x86_64' ? 'amd64' : 'arm64',
  release: 'debian-12',
  modules: [{ builtName: 'hello', destName: 'hello', fileName: file, installLocation: '/updates/dkms', destLocation: '/extra', data: Buffer.from(`module for ${k}`) }],
  makeLog: Buffer.from('make\n'),
  kernelConfig: undefined,
});
const input: PackInput = {
  name: 'hello',
  version: '1.0.0',
  dkmsConf: Buffer.from('PACKAGE_NAME="hello"\nPACKAGE_VERSION="1.0.0"\n'),
  source: [],
  kernels: [kernel('6.12.117+deb12-amd64', 'hello.ko.xz'), kernel('6.1.0-57-amd64', 'hello.ko'), kernel('6.1.0-57-arm64', 'hello.ko', 'aarch64')],
  sourceDateEpoch: 1_700_000_000,
};
const errorCode = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return isKfarmError(err) ? err.code : 'not a KfarmError';
  }
  return 'no error';
};

describe('rpm names', () => {
  it('keeps + in names (rpm allows it, kmodtool uses uname -r verbatim), maps ~ to _', () => {
    expect(kmodPackageName('hello', '6.12.117+deb12-amd64')).toBe('kmod-hello-6.12.117+deb12-amd64');
    expect(rpmNamePart('6.1~rc1-amd64')).toBe('6.1_rc1-amd64');
  });

  it('maps - in a module version to _ (rpm Version refuses -), keeps ~ and +', () => {
    expect(rpmVersion('2.0-rc1~beta+git')).toBe('2.0_rc1~beta+git');
  });

  it('writes the kernel EVR with one - at most, verbatim when it already is', () => {
    expect(rpmKernelEvr('6.1.0-57-amd64')).toBe('6.1.0_57-amd64');
    expect(rpmKernelEvr('6.12.117+deb12-cloud-amd64')).toBe('6.12.117+deb12_cloud-amd64');
    expect(rpmKernelEvr('6.17.7-300.fc43.x86_64')).toBe('6.17.7-300.fc43.x86_64');
  });
});

describe('kmod-rpm spec', () => {
  const plan = kmodRpmPlan(input, input.kernels[0]!);

  it('names the package and file as kmodtool does, arch from the kernel', () => {
    expect(plan.spec).toMatch(/^Name: kmod-hello-6\.12\.117\+deb12-amd64$/m);
    expect(plan.spec).toMatch(/^Version: 1\.0\.0$/m);
    expect(plan.spec).toMatch(/^Release: 1$/m);
    expect(plan.target).toBe('x86_64');
    expect(kmodRpmPlan(input, input.kernels[2]!).target).toBe('aarch64');
    expect(kmodRpmFileName(input, input.kernels[0]!)).toBe('kmod-hello-6.12.117+deb12-amd64-1.0.0-1.x86_64.rpm');
  });

  it('requires the kernel, provides kmod(<x>.ko) even for .ko.xz and <name>-kmod, no automatic deps', () => {
    expect(plan.spec).toMatch(/^Requires: kernel-uname-r = 6\.12\.117\+deb12-amd64$/m);
    expect(plan.spec).toMatch(/^Provides: kmod\(hello\.ko\)$/m);
    expect(plan.spec).toMatch(/^Provides: hello-kmod = 1\.0\.0-1$/m);
    expect(plan.spec).toMatch(/^AutoReqProv: no$/m);
  });

  it('puts the module file as given in /usr/lib/modules/<kver>/extra/<name>/, owned like kmodtool', () => {
    expect(plan.files.map((f) => [f.path, f.mode])).toEqual([['/usr/lib/modules/6.12.117+deb12-amd64/extra/hello/hello.ko.xz', 0o644]]);
    expect(plan.spec).toContain('%defattr(644,root,root,755)\n%dir /usr/lib/modules/6.12.117+deb12-amd64/extra\n/usr/lib/modules/6.12.117+deb12-amd64/extra/hello/\n');
  });

  it('runs depmod in %post and %postun, guarded by the kernel dir and depmod being there, always exit 0', () => {
    const script = depmodScript('6.1.0-57-amd64');
    expect(script).toContain("[ -d '/usr/lib/modules/6.1.0-57-amd64' ]");
    expect(script).toContain("command -v depmod >/dev/null 2>&1; then depmod -a '6.1.0-57-amd64' || :");
    expect(script.endsWith('exit 0')).toBe(true);
    expect(plan.spec).toContain(`%post\n${depmodScript('6.12.117+deb12-amd64')}\n`);
    expect(plan.spec).toContain(`%postun\n${depmodScript('6.12.117+deb12-amd64')}\n`);
  });

  it('is a pure function of its input', () => {
    expect(kmodRpmPlan(input, input.kernels[0]!)).toEqual(plan);
  });

  it('refuses names that would break out of the spec or the path', () => {
    expect(errorCode(() => kmodRpmPlan({ ...input, name: 'a\nRequires: evil' }, input.kernels[0]!))).toBe('BAD_OPTION');
    expect(errorCode(() => kmodRpmPlan(input, { ...input.kernels[0]!, kernel: '6.1/../../etc' }))).toBe('BAD_OPTION');
    expect(errorCode(() => kmodRpmPlan(input, { ...input.kernels[0]!, modules: [{ ...input.kernels[0]!.modules[0]!, fileName: '%{evil}.ko' }] }))).toBe('BAD_OPTION');
  });
});

describe('dkms-rpm spec', () => {
  const tarballs = new Map(input.kernels.map((k) => [tarballKey(k), Buffer.from(`tarball ${tarballKey(k)}`)]));
  const plan = dkmsRpmPlan(input, tarballs);

  it('is one noarch <name>-dkms-bin package requiring dkms', () => {
    expect(dkmsRpmFileName(input)).toBe('hello-dkms-bin-1.0.0-1.noarch.rpm');
    expect(plan.spec).toMatch(/^Name: hello-dkms-bin$/m);
    expect(plan.spec).toMatch(/^BuildArch: noarch$/m);
    expect(plan.spec).toMatch(/^Requires: dkms$/m);
    expect(plan.target).toBeUndefined();
  });

  it('carries one tarball per kernel (sorted) and /usr/src/<name>-<version>/dkms.conf', () => {
    expect(plan.files.map((f) => f.path)).toEqual([
      '/usr/share/hello-dkms-bin/hello-1.0.0-kernel6.1.0-57-amd64-x86_64.dkms.tar.gz',
      '/usr/share/hello-dkms-bin/hello-1.0.0-kernel6.1.0-57-arm64-aarch64.dkms.tar.gz',
      '/usr/share/hello-dkms-bin/hello-1.0.0-kernel6.12.117+deb12-amd64-x86_64.dkms.tar.gz',
      '/usr/src/hello-1.0.0/dkms.conf',
    ]);
    expect(plan.files[3]!.data).toEqual(input.dkmsConf);
  });

  it('each tarball is binaries-only for its one kernel, every timestamp the epoch', () => {
    const entries = kernelTarballEntries(input, input.kernels[0]!);
    expect(entries.map((e) => e.path)).toEqual(expect.arrayContaining(['dkms_main_tree/6.12.117+deb12-amd64/x86_64/module/hello.ko.xz', 'dkms_binaries_only/dkms.conf']));
    expect(entries.some((e) => e.path.startsWith('dkms_source_tree'))).toBe(false);
    expect(new Set(entries.map((e) => e.mtime?.getTime()))).toEqual(new Set([1_700_000_000_000]));
  });

  it('%post loads each tarball of the machine arch with ldtarball --force (0 or 3 is success, 1 only if the kernel landed in the tree), installs where the kernel is, exits 0', () => {
    const post = /%post\n([\s\S]*?)\n\n/.exec(plan.spec)?.[1] ?? '';
    expect(post).toContain('kfarm_out=$(dkms ldtarball --force "$1" 2>&1)');
    expect(post).toContain('if [ "$kfarm_rc" -eq 0 ] || [ "$kfarm_rc" -eq 3 ]; then return 0; fi');
    expect(post).toContain(`if [ "$kfarm_rc" -eq 1 ] && [ -d '/var/lib/dkms/hello/1.0.0'"/$2/$3/module" ]; then return 0; fi`);
    expect(post).toContain(
      `if [ "$kfarm_machine" = 'aarch64' ]; then kfarm_load '/usr/share/hello-dkms-bin/hello-1.0.0-kernel6.1.0-57-arm64-aarch64.dkms.tar.gz' '6.1.0-57-arm64' 'aarch64' && kfarm_install '6.1.0-57-arm64'; fi`,
    );
    expect(post).toContain('[ -d "/lib/modules/$1/build" ] || [ -d "/lib/modules/$1/kernel" ]');
    expect(post).toContain(`dkms install -m 'hello' -v '1.0.0' -k "$1" ||`);
    expect(post).not.toMatch(/set -e/);
    expect(post.trimEnd().endsWith('exit 0')).toBe(true);
  });

  it('%preun removes the version from dkms on erase, tolerantly', () => {
    expect(plan.spec).toContain(`%preun\n# erase`);
    expect(plan.spec).toContain(`if [ "$1" -eq 0 ] && command -v dkms >/dev/null 2>&1; then dkms remove -m 'hello' -v '1.0.0' --all >/dev/null 2>&1 || :; fi\nexit 0`);
  });

  it('uses the dkms version in paths and scripts, the rpm-escaped one in Version', () => {
    const dashed = { ...input, version: '2.0-rc1', dkmsConf: Buffer.from('x') };
    const p = dkmsRpmPlan(dashed, tarballs);
    expect(p.spec).toMatch(/^Version: 2\.0_rc1$/m);
    expect(p.spec).toContain("-v '2.0-rc1'");
    expect(p.files.at(-1)!.path).toBe('/usr/src/hello-2.0-rc1/dkms.conf');
  });
});
