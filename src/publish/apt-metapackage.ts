import { BMDEB_MAINTAINER } from '../packaging/bmdeb/layout.js';
import { controlText, type DebLayout } from '../packaging/deb/control.js';
import { debFileName } from '../packaging/deb/debian-names.js';
import type { MetaPackage } from './apt-plan.js';

/**
 * A metapackage as a deb layout (pure; build-deb.ts makes the file): no files, only a
 * `Depends` on the newest kernel's module package, at least the version published for it, so
 * that `apt-get upgrade` on a machine that installed `hello-modules-amd64` brings the module of
 * each newer kernel as it arrives (and, through that package's own Depends, the kernel itself),
 * the way Debian's `linux-image-amd64` follows the newest `linux-image-<abi>-amd64`.
 */
export function metaPackageLayout(meta: MetaPackage): DebLayout {
  const control = controlText([
    ['Package', meta.package],
    ['Version', meta.version],
    ['Architecture', meta.architecture],
    ['Maintainer', BMDEB_MAINTAINER],
    ['Installed-Size', '0'],
    ['Depends', `${meta.depends.package} (>= ${meta.depends.version})`],
    ['Section', 'misc'],
    ['Priority', 'optional'],
    [
      'Description',
      `${meta.module} modules for the newest ${meta.flavour} kernel\nThis metapackage depends on ${meta.depends.package}, the ${meta.module} module\nbuilt for ${meta.kernel}, the newest ${meta.flavour} kernel kfarm built it for.\nEach newer kernel's build moves it on: apt-get upgrade follows.`,
    ],
  ]);
  return { fileName: debFileName(meta.package, meta.version, meta.architecture), control, scripts: {}, entries: [] };
}
