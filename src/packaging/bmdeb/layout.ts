import { debFileName, debianArch, debianPackageName, debianStem, debianVersion } from '../deb/debian-names.js';
import { controlText, installedSize, withParents, type DebLayout } from '../deb/control.js';
import type { PackInput, PackKernel } from '../packer.js';

/**
 * `dkms mkbmdeb`'s binary-module deb (reference: packaging.md §2, dkms.md §4.4), one per
 * (module, kernel): `<pkg>-modules-<kver>_<version>_<arch>.deb` owning
 * /lib/modules/<kver>/<install location>/<file> (updates/dkms on Debian; .ko or .ko.xz as the
 * kernel's own modules are), `Depends: linux-image-<kver>`, `Provides: <pkg>-modules`, no dkms.
 * The control fields are the mkbmdeb template's; the maintainer scripts are the ones
 * dh_installmodules (debhelper 13.11.4) adds. Pure.
 */
export const BMDEB_MAINTAINER = 'Dynamic Kernel Modules Support Team <pkg-dkms-maint@lists.alioth.debian.org>';

export function bmdebPackageName(input: Pick<PackInput, 'name'>, kernel: Pick<PackKernel, 'kernel'>): string {
  return debianPackageName(`${debianStem(input.name)}-modules-${kernel.kernel}`, `kernel ${kernel.kernel}`);
}

export function bmdebFileName(input: Pick<PackInput, 'name' | 'version'>, kernel: Pick<PackKernel, 'kernel' | 'debianArch'>): string {
  return debFileName(bmdebPackageName(input, kernel), debianVersion(input.version), debianArch(kernel.debianArch));
}

/** depmod only where the kernel image is installed (its System.map is in /boot), never failing the package: debhelper's guard. */
function depmodIfInstalled(kernel: string, indent: string): string {
  return [`${indent}if [ -e /boot/System.map-${kernel} ]; then`, `${indent}\tdepmod -a -F /boot/System.map-${kernel} ${kernel} || true`, `${indent}fi`].join('\n');
}

export function bmdebPostinst(kernel: string): string {
  return [
    '#!/bin/sh',
    'set -e',
    '# as dh_installmodules writes it (debhelper 13.11.4 autoscripts/postinst-modules)',
    'if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ] ; then',
    depmodIfInstalled(kernel, '\t'),
    'fi',
    '',
  ].join('\n');
}

export function bmdebPostrm(kernel: string): string {
  return ['#!/bin/sh', 'set -e', 'case "$1" in', 'remove|purge)', depmodIfInstalled(kernel, '\t'), '\t;;', 'esac', ''].join('\n');
}

export function bmdebLayout(input: PackInput, kernel: PackKernel, maintainer: string = BMDEB_MAINTAINER): DebLayout {
  const stem = debianStem(input.name);
  const pkg = bmdebPackageName(input, kernel);
  const version = debianVersion(input.version);
  const arch = debianArch(kernel.debianArch);
  const k = kernel.kernel;
  const entries = withParents(kernel.modules.map((m) => ({ path: `lib/modules/${k}/${m.installLocation.replace(/^\/+|\/+$/g, '')}/${m.fileName}`, data: m.data })));
  const control = controlText([
    ['Package', pkg],
    ['Source', `${stem}-dkms-bin`],
    ['Version', version],
    ['Architecture', arch],
    ['Maintainer', maintainer],
    ['Installed-Size', String(installedSize(entries))],
    ['Depends', `linux-image-${k}`],
    ['Provides', `${stem}-modules`],
    ['Section', 'misc'],
    ['Priority', 'optional'],
    [
      'Description',
      `${stem} binary drivers for linux-image-${k}\nThis package contains ${stem} drivers for the ${k} Linux kernel,\nbuilt from ${stem}-dkms for the ${arch} architecture.`,
    ],
  ]);
  return { fileName: debFileName(pkg, version, arch), control, scripts: { postinst: bmdebPostinst(k), postrm: bmdebPostrm(k) }, entries };
}
