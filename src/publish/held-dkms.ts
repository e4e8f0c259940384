/**
 * The rule both publishers (APT and DNF) follow for a dkms package whose version is published
 * already with other bytes. The dkms-deb and the dkms RPM are one package per module version
 * that carries the prebuilt binaries of the kernels of the build that made it, so the next
 * kernel's build of the same version makes other bytes under the same name. A version, once
 * published, never changes: the published package stays and the new one is held (not refused:
 * publishing a new kernel is what a repository is for), while a kernel's own package (bmdeb,
 * kmod RPM) with other bytes still refuses the whole publish.
 */
export const HELD_DKMS_HINT =
  'the published package stays as it is (a version, once published, never changes) and the new kernels reach machines through their own module packages; to ship new prebuilt binaries in the dkms package, raise PACKAGE_VERSION in dkms.conf and build again';

/** The warning a publisher logs for one held dkms package. */
export function heldDkmsWarning(pkg: string, file: string, where: string): string {
  return `${pkg} (${file}) is held, not published: ${where} has this version with other bytes (the binaries of other kernels); ${HELD_DKMS_HINT}`;
}
