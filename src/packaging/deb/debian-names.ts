import { KfarmError } from '../../errors/kfarm-error.js';
import { quoteName } from '../../dkms/names.js';

/**
 * Debian policy §5.6.1 / §5.6.12 made into checks. Package names: lower case letters, digits,
 * `+ - .`, at least two characters, starting with a letter or digit (dpkg-deb refuses anything
 * else; `+` is allowed, so 6.12.117+deb12-amd64 stays verbatim). Versions: no epoch here (dkms
 * versions hold no `:`); the upstream part starts with a digit and holds `A-Za-z0-9 . + ~ -`, a
 * `-` splitting off the Debian revision at the last one. Pure.
 */
const PACKAGE = /^[a-z0-9][a-z0-9+.-]+$/;
const UPSTREAM = /^[0-9][A-Za-z0-9.+~-]*$/;
const REVISION = /^[A-Za-z0-9.+~]+$/;
const DEB_ARCH = /^[a-z0-9][a-z0-9-]{0,31}$/;

/** A dkms module name as the stem of Debian package names: `_` → `-` (mkdeb/mkbmdeb), lower-cased. */
export function debianStem(moduleName: string): string {
  const stem = moduleName.replace(/_/g, '-').toLowerCase();
  if (!PACKAGE.test(stem)) {
    throw new KfarmError('BAD_OPTION', `module name ${quoteName(moduleName)} makes no Debian package name (${quoteName(stem)})`, {
      context: { module: moduleName },
      hint: 'Debian package names hold a-z, 0-9, `+ - .`, start with a letter or digit and are at least 2 characters: rename PACKAGE_NAME in dkms.conf.',
    });
  }
  return stem;
}

/** A whole package name, checked (no mapping: a kernel release is part of a linux-image-<k> name that must match). */
export function debianPackageName(name: string, what: string): string {
  if (!PACKAGE.test(name)) {
    throw new KfarmError('BAD_OPTION', `${what} makes the package name ${quoteName(name)}, which Debian does not allow`, {
      context: { package: name },
      hint: 'Debian package names hold only a-z, 0-9 and `+ - .` (no upper case, no `_` or `~`): such a kernel or module has no Debian package; pick another --format.',
    });
  }
  return name;
}

/** A dkms PACKAGE_VERSION as a Debian Version, verbatim or refused (a mapped version would no longer sort like the original). */
export function debianVersion(version: string): string {
  const dash = version.lastIndexOf('-');
  const upstream = dash < 0 ? version : version.slice(0, dash);
  const revision = dash < 0 ? undefined : version.slice(dash + 1);
  const upstreamOk = UPSTREAM.test(upstream) && (dash >= 0 || !upstream.includes('-'));
  if (!upstreamOk || (revision !== undefined && !REVISION.test(revision))) {
    throw new KfarmError('BAD_OPTION', `module version ${quoteName(version)} is not a Debian version`, {
      context: { version },
      hint: 'A Debian version starts with a digit and holds only A-Z a-z 0-9 and `. + ~ -` (a `-` splits off the revision, which must not be empty): change PACKAGE_VERSION in dkms.conf, or pick another --format.',
    });
  }
  return version;
}

export function debianArch(arch: string): string {
  if (!DEB_ARCH.test(arch)) throw new KfarmError('BAD_OPTION', `${quoteName(arch)} is not a Debian architecture`, { context: { arch } });
  return arch;
}

/** `<package>_<version>_<arch>.deb`, the name dpkg-name and the archive give a package (no epoch: dkms versions have none). */
export function debFileName(pkg: string, version: string, arch: string): string {
  // Debian's file names leave the epoch out (dpkg-name, the archive's pool): a metapackage may carry one
  return `${pkg}_${version.replace(/^[0-9]+:/, '')}_${arch}.deb`;
}
