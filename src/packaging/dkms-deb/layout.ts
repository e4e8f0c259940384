import { debFileName, debianArch, debianPackageName, debianStem, debianVersion } from '../deb/debian-names.js';
import { controlText, installedSize, withParents, type DebLayout } from '../deb/control.js';
import type { PackInput } from '../packer.js';
import { BMDEB_MAINTAINER } from '../bmdeb/layout.js';

/**
 * The DKMS deb (reference: dkms.md §4.2 common.postinst, §4.3 mkdeb), one per module version:
 * `<pkg>-dkms_<version>_<arch>.deb` carrying one binaries-only DKMS tarball per built kernel in
 * /usr/share/<name>-dkms/ (where mkdeb put its tarball) and /usr/src/<name>-<version>/dkms.conf.
 * Its postinst does what `dkms ldtarball` should: it loads every kernel into the DKMS tree and
 * installs the module for the machine's kernels among them; its prerm removes it from DKMS.
 *
 * One tarball per kernel, not one for all: dkms 3.x's ldtarball loads only the first kernel of a
 * multi-kernel tarball (dkms.md §2.6, unfixed upstream). The tarballs are not named
 * `<name>-<version>.dkms.tar.gz`, so Debian's common.postinst never picks one up on its own.
 *
 * Architecture: the package holds no code for the machine it installs on, only modules for
 * named kernels, each kernel an arch of its own. Built for one Debian arch, it says that arch
 * (apt then offers it only where its kernels can run, as mkdeb's binary debs did); built for
 * several, it is `all`: the same files serve every arch, and the postinst installs only the
 * kernels of the machine's own arch that are present in /lib/modules. Pure.
 */
export interface KernelTarball {
  kernel: string;
  /** dkms's arch: x86_64 */
  arch: string;
  debianArch: string;
  fileName: string;
  data: Buffer;
}

export function dkmsDebPackageName(input: Pick<PackInput, 'name'>): string {
  return debianPackageName(`${debianStem(input.name)}-dkms`, `module ${input.name}`);
}

/** The one Debian arch of every kernel, else `all`. */
export function dkmsDebArch(kernels: ReadonlyArray<{ debianArch: string }>): string {
  const arches = [...new Set(kernels.map((k) => debianArch(k.debianArch)))];
  return arches.length === 1 && arches[0] !== undefined ? arches[0] : 'all';
}

export function dkmsDebFileName(input: Pick<PackInput, 'name' | 'version' | 'kernels'>): string {
  return debFileName(dkmsDebPackageName(input), debianVersion(input.version), dkmsDebArch(input.kernels));
}

/** Single-quoted for sh (names are checked by kfarm's sets, which hold no quote; this keeps it so). */
function q(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function dkmsDebPostinst(name: string, version: string, tarballs: readonly KernelTarball[]): string {
  return [
    '#!/bin/sh',
    'set -e',
    `NAME=${q(name)}`,
    `VERSION=${q(version)}`,
    `DIR=${q(`/usr/share/${name}-dkms`)}`,
    '',
    '# load_kernel <tarball> <kernel> <arch>: one kernel per tarball, each loaded with --force. Once',
    '# the module is added, the first load exits 0 and the later ones 3 ("DKMS tree already contains")',
    '# after loading their kernel; 1 is dkms #362 (binaries-only load without /usr/src/<m>-<v>).',
    "# What counts is that the kernel's modules are in the DKMS tree.",
    'load_kernel() {',
    '\trc=0',
    '\tdkms ldtarball --force "$DIR/$1" || rc=$?',
    '\tcase "$rc" in',
    '\t0|1|3) ;;',
    '\t*) echo "$NAME-dkms: dkms ldtarball $DIR/$1 failed (exit $rc)" >&2; return 1 ;;',
    '\tesac',
    '\tif [ ! -d "/var/lib/dkms/$NAME/$VERSION/$2/$3/module" ]; then',
    '\t\techo "$NAME-dkms: dkms ldtarball $DIR/$1 exited $rc but loaded no modules for $2 ($3)" >&2',
    '\t\treturn 1',
    '\tfi',
    '}',
    '',
    "# install_kernel <kernel> <arch>: only a kernel of this machine's arch that is present here;",
    '# a failed install warns (as common.postinst does) and leaves the package installed.',
    'install_kernel() {',
    '\tif [ "$2" = "$(uname -m)" ] && [ -d "/lib/modules/$1" ]; then',
    '\t\tdkms install -m "$NAME" -v "$VERSION" -k "$1" || echo "$NAME-dkms: dkms install for $1 failed (exit $?); see above" >&2',
    '\tfi',
    '}',
    '',
    'case "$1" in',
    'configure)',
    '\tif [ -e /etc/dkms/no-autoinstall ]; then',
    '\t\techo "$NAME-dkms: /etc/dkms/no-autoinstall exists: not loading $NAME $VERSION into DKMS" >&2',
    '\t\texit 0',
    '\tfi',
    ...removeAll(tarballs, '\t'),
    ...tarballs.map((t) => `\tload_kernel ${q(t.fileName)} ${q(t.kernel)} ${q(t.arch)}`),
    ...tarballs.map((t) => `\tinstall_kernel ${q(t.kernel)} ${q(t.arch)}`),
    '\t;;',
    'esac',
    'exit 0',
    '',
  ].join('\n');
}

/**
 * Out of DKMS, kernel by kernel, then `--all` for anything else: dkms 3.0.10's `remove --all`
 * removes only the first kernel of a module (measured: the others and /var/lib/dkms/<m>/<v>
 * stay, and dkms status then fails on the missing dkms.conf). Tolerant: a module that is
 * not there must not stop dpkg.
 */
function removeAll(tarballs: readonly KernelTarball[], indent: string): string[] {
  return [
    ...tarballs.map(
      (t) => `${indent}if [ -d "/var/lib/dkms/$NAME/$VERSION/${t.kernel}/${t.arch}" ]; then dkms remove -m "$NAME" -v "$VERSION" -k ${q(`${t.kernel}/${t.arch}`)} || true; fi`,
    ),
    `${indent}if [ -d "/var/lib/dkms/$NAME/$VERSION" ]; then dkms remove -m "$NAME" -v "$VERSION" --all || true; fi`,
  ];
}

export function dkmsDebPrerm(name: string, version: string, tarballs: readonly KernelTarball[]): string {
  return [
    '#!/bin/sh',
    'set -e',
    `NAME=${q(name)}`,
    `VERSION=${q(version)}`,
    'case "$1" in',
    'remove|upgrade|deconfigure)',
    '\tif command -v dkms >/dev/null 2>&1; then',
    ...removeAll(tarballs, '\t\t'),
    '\tfi',
    '\t;;',
    'esac',
    'exit 0',
    '',
  ].join('\n');
}

export function dkmsDebLayout(input: PackInput, tarballs: readonly KernelTarball[], maintainer: string = BMDEB_MAINTAINER): DebLayout {
  const stem = debianStem(input.name);
  const pkg = dkmsDebPackageName(input);
  const version = debianVersion(input.version);
  const arch = dkmsDebArch(tarballs);
  const sorted = [...tarballs].sort((a, b) => (a.fileName < b.fileName ? -1 : a.fileName > b.fileName ? 1 : 0));
  const entries = withParents([
    { path: `usr/src/${input.name}-${input.version}/dkms.conf`, data: input.dkmsConf },
    ...sorted.map((t) => ({ path: `usr/share/${input.name}-dkms/${t.fileName}`, data: t.data })),
  ]);
  const kernels = sorted.map((t) => `${t.kernel} (${t.arch})`);
  const control = controlText([
    ['Package', pkg],
    ['Version', version],
    ['Architecture', arch],
    ['Maintainer', maintainer],
    ['Installed-Size', String(installedSize(entries))],
    ['Depends', 'dkms'],
    ['Provides', `${stem}-modules (= ${version})`],
    ['Section', 'misc'],
    ['Priority', 'optional'],
    [
      'Description',
      `${stem} driver in DKMS format, prebuilt\nThe ${input.name} ${input.version} modules built for ${kernels.length} kernel(s), loaded into DKMS\nand installed for those of them present on this machine. It carries no source:\nDKMS cannot build it for other kernels.\n\nKernels: ${kernels.join(', ')}.`,
    ],
  ]);
  return {
    fileName: debFileName(pkg, version, arch),
    control,
    scripts: { postinst: dkmsDebPostinst(input.name, input.version, sorted), prerm: dkmsDebPrerm(input.name, input.version, sorted) },
    entries,
  };
}
