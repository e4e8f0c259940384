import { describe, expect, it } from 'vitest';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { bmdebFileName, bmdebLayout, bmdebPostinst, bmdebPostrm } from '../../src/packaging/bmdeb/layout.js';
import { controlText, md5sums } from '../../src/packaging/deb/control.js';
import { debianStem, debianVersion } from '../../src/packaging/deb/debian-names.js';
import { dkmsDebArch, dkmsDebLayout, dkmsDebPostinst, type KernelTarball } from '../../src/packaging/dkms-deb/layout.js';
import type { PackInput, PackKernel } from '../../src/packaging/packer.js';

const kernel = (k: string, file: string, debianArch = 'amd64', arch = 'x86_64'): PackKernel => ({
  kernel: k,
  arch,
  debianArch,
  release: 'debian-12',
  makeLog: undefined,
  kernelConfig: undefined,
  modules: [{ builtName: 'hello_x', destName: 'hello_x', fileName: file, installLocation: '/updates/dkms', destLocation: '/extra', data: Buffer.from('ELF') }],
});
const input = (over: Partial<PackInput> = {}): PackInput => ({
  name: 'hello_x',
  version: '1.0',
  dkmsConf: Buffer.from('PACKAGE_NAME=hello_x\nPACKAGE_VERSION=1.0\n'),
  source: [],
  kernels: [kernel('6.1.0-57-amd64', 'hello_x.ko'), kernel('6.12.117+deb12-amd64', 'hello_x.ko.xz')],
  sourceDateEpoch: 946684800,
  ...over,
});
const tarball = (k: string, debianArch = 'amd64', arch = 'x86_64'): KernelTarball => ({
  kernel: k,
  arch,
  debianArch,
  fileName: `hello_x-1.0-kernel${k}-${arch}.dkms.tar.gz`,
  data: Buffer.from(k),
});

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isKfarmError(err) ? err.code : 'not a KfarmError';
  }
  return undefined;
}

describe('Debian names', () => {
  it('makes the package stem as mkbmdeb does (_ → -) and lower-cases it', () => {
    expect(debianStem('hello_x')).toBe('hello-x');
    expect(debianStem('Hello_X')).toBe('hello-x');
  });

  it('refuses versions Debian cannot carry, keeps the others verbatim', () => {
    for (const v of ['1.0', '1.0-2', '2.3~rc1', '1.0+git20240101', '0.9.1-1+deb12u1']) expect(debianVersion(v)).toBe(v);
    for (const v of ['v1.0', '1.0_beta', '1.0-', 'abc'])
      expect(
        code(() => debianVersion(v)),
        v,
      ).toBe('BAD_OPTION');
  });
});

describe('bmdeb layout', () => {
  it('names the file <pkg>-modules-<kver>_<version>_<arch>.deb, + kept in the kernel (packaging.md §2 example)', () => {
    expect(bmdebFileName(input(), { kernel: '6.1.0-57-amd64', debianArch: 'amd64' })).toBe('hello-x-modules-6.1.0-57-amd64_1.0_amd64.deb');
    expect(bmdebFileName(input(), { kernel: '6.12.117+deb12-arm64', debianArch: 'arm64' })).toBe('hello-x-modules-6.12.117+deb12-arm64_1.0_arm64.deb');
  });

  it('refuses a kernel release Debian cannot put in a package name, with a BAD_OPTION', () => {
    expect(code(() => bmdebFileName(input(), { kernel: '6.1.0-57-Custom', debianArch: 'amd64' }))).toBe('BAD_OPTION');
    expect(code(() => bmdebFileName(input(), { kernel: '6.1.0_57', debianArch: 'amd64' }))).toBe('BAD_OPTION');
  });

  it('puts the module, .ko or .ko.xz as given, in /lib/modules/<kver>/updates/dkms, parents first, modes 0755/0644', () => {
    const ko = bmdebLayout(input(), kernel('6.1.0-57-amd64', 'hello_x.ko'));
    expect(ko.entries.map((e) => [e.path, e.type, e.mode.toString(8)])).toEqual([
      ['lib', 'directory', '755'],
      ['lib/modules', 'directory', '755'],
      ['lib/modules/6.1.0-57-amd64', 'directory', '755'],
      ['lib/modules/6.1.0-57-amd64/updates', 'directory', '755'],
      ['lib/modules/6.1.0-57-amd64/updates/dkms', 'directory', '755'],
      ['lib/modules/6.1.0-57-amd64/updates/dkms/hello_x.ko', 'file', '644'],
    ]);
    const xz = bmdebLayout(input(), kernel('6.12.117+deb12-amd64', 'hello_x.ko.xz'));
    expect(xz.entries.at(-1)?.path).toBe('lib/modules/6.12.117+deb12-amd64/updates/dkms/hello_x.ko.xz');
  });

  it('writes the mkbmdeb control fields', () => {
    const { control } = bmdebLayout(input(), kernel('6.1.0-57-amd64', 'hello_x.ko'));
    expect(control).toBe(
      [
        'Package: hello-x-modules-6.1.0-57-amd64',
        'Source: hello-x-dkms-bin',
        'Version: 1.0',
        'Architecture: amd64',
        'Maintainer: Dynamic Kernel Modules Support Team <pkg-dkms-maint@lists.alioth.debian.org>',
        'Installed-Size: 6',
        'Depends: linux-image-6.1.0-57-amd64',
        'Provides: hello-x-modules',
        'Section: misc',
        'Priority: optional',
        'Description: hello-x binary drivers for linux-image-6.1.0-57-amd64',
        ' This package contains hello-x drivers for the 6.1.0-57-amd64 Linux kernel,',
        ' built from hello-x-dkms for the amd64 architecture.',
        '',
      ].join('\n'),
    );
  });

  it("runs depmod in postinst (configure) and postrm (remove/purge) only where the kernel's System.map is, never failing", () => {
    const post = bmdebPostinst('6.1.0-57-amd64');
    expect(post).toMatch(/^#!\/bin\/sh\nset -e\n/);
    expect(post).toContain('if [ "$1" = "configure" ]');
    expect(post).toContain('if [ -e /boot/System.map-6.1.0-57-amd64 ]; then\n\t\tdepmod -a -F /boot/System.map-6.1.0-57-amd64 6.1.0-57-amd64 || true');
    const rm = bmdebPostrm('6.1.0-57-amd64');
    expect(rm).toContain('remove|purge)');
    expect(rm).toContain('depmod -a -F /boot/System.map-6.1.0-57-amd64 6.1.0-57-amd64 || true');
  });
});

describe('dkms-deb layout', () => {
  it('is its one Debian arch when every kernel shares it, else all', () => {
    expect(dkmsDebArch([{ debianArch: 'amd64' }, { debianArch: 'amd64' }])).toBe('amd64');
    expect(dkmsDebArch([{ debianArch: 'amd64' }, { debianArch: 'arm64' }])).toBe('all');
  });

  it('carries dkms.conf in /usr/src/<m>-<v> and one tarball per kernel in /usr/share/<m>-dkms, sorted', () => {
    const layout = dkmsDebLayout(input(), [tarball('6.12.117+deb12-amd64'), tarball('6.1.0-57-arm64', 'arm64', 'aarch64'), tarball('6.1.0-57-amd64')]);
    expect(layout.fileName).toBe('hello-x-dkms_1.0_all.deb');
    expect(layout.entries.filter((e) => e.type === 'file').map((e) => e.path)).toEqual([
      'usr/share/hello_x-dkms/hello_x-1.0-kernel6.1.0-57-amd64-x86_64.dkms.tar.gz',
      'usr/share/hello_x-dkms/hello_x-1.0-kernel6.1.0-57-arm64-aarch64.dkms.tar.gz',
      'usr/share/hello_x-dkms/hello_x-1.0-kernel6.12.117+deb12-amd64-x86_64.dkms.tar.gz',
      'usr/src/hello_x-1.0/dkms.conf',
    ]);
    expect(layout.control).toContain('Package: hello-x-dkms\n');
    expect(layout.control).toContain('Architecture: all\n');
    expect(layout.control).toContain('Depends: dkms\n');
    expect(layout.control).toContain('Provides: hello-x-modules (= 1.0)\n');
  });

  it('postinst loads every kernel with ldtarball --force (0/1/3 tolerated, the module dir checked), then installs the present ones', () => {
    const script = dkmsDebPostinst('hello_x', '1.0', [tarball('6.1.0-57-amd64'), tarball('6.12.117+deb12-amd64')]);
    expect(script).toContain('dkms ldtarball --force "$DIR/$1" || rc=$?');
    expect(script).toContain('0|1|3) ;;');
    expect(script).toContain('if [ ! -d "/var/lib/dkms/$NAME/$VERSION/$2/$3/module" ]');
    expect(script).toContain(
      "\tload_kernel 'hello_x-1.0-kernel6.1.0-57-amd64-x86_64.dkms.tar.gz' '6.1.0-57-amd64' 'x86_64'\n\tload_kernel 'hello_x-1.0-kernel6.12.117+deb12-amd64-x86_64.dkms.tar.gz'",
    );
    expect(script).toContain("\tinstall_kernel '6.12.117+deb12-amd64' 'x86_64'");
    expect(script).toContain('dkms install -m "$NAME" -v "$VERSION" -k "$1"');
    // the loads all come before the first install, under configure only
    expect(script.indexOf('\tinstall_kernel ')).toBeGreaterThan(script.lastIndexOf('\tload_kernel '));
    expect(script).toContain('case "$1" in\nconfigure)');
  });

  it('prerm removes the module from dkms kernel by kernel (the --all of 3.0.10 stops after the first), then --all, tolerating failure', () => {
    const { scripts } = dkmsDebLayout(input(), [tarball('6.1.0-57-amd64')]);
    expect(scripts.prerm).toContain(
      `if [ -d "/var/lib/dkms/$NAME/$VERSION/6.1.0-57-amd64/x86_64" ]; then dkms remove -m "$NAME" -v "$VERSION" -k '6.1.0-57-amd64/x86_64' || true; fi`,
    );
    expect(scripts.prerm).toContain('dkms remove -m "$NAME" -v "$VERSION" --all || true');
    expect(scripts.prerm).toContain('remove|upgrade|deconfigure)');
  });
});

describe('control text', () => {
  it('folds Description into continuation lines, an empty line as " ."', () => {
    expect(
      controlText([
        ['Package', 'a'],
        ['Description', 'short\nline one\n\nline two'],
      ]),
    ).toBe('Package: a\nDescription: short\n line one\n .\n line two\n');
    expect(() => controlText([['Depends', 'a\nb']])).toThrow();
  });

  it('writes md5sums as dh_md5sums does', () => {
    expect(
      md5sums([
        { path: 'b', type: 'file', mode: 0o644, data: Buffer.from('') },
        { path: 'a', type: 'directory', mode: 0o755 },
      ]),
    ).toBe('d41d8cd98f00b204e9800998ecf8427e  b\n');
  });
});
