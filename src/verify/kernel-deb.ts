import { fetchDeb, newestDeb, type DebEntry } from '../archive/fetch-deb.js';
import type { IndexStoreOptions } from '../archive/index-store.js';
import { releaseStanzas, type LocatedStanza, type StanzaKind } from '../archive/package-stanzas.js';

/** The archive's entry of one kernel image package: where it is and what it must hash to. */
export type KernelDebEntry = DebEntry;

const IMAGE_STANZAS: StanzaKind = { name: 'image-stanzas', keep: (pkg) => /^linux-image-/.test(pkg) };

/**
 * Pure: the package that holds `kver`'s vmlinuz and modules among the archive's stanzas:
 * linux-image-<kver>-unsigned (the kernel proper) or linux-image-<kver> where the archive has
 * no unsigned twin; the newest version when several suites hold it.
 */
export function pickKernelDeb(stanzas: readonly LocatedStanza[], kver: string): KernelDebEntry | undefined {
  return newestDeb(stanzas, `linux-image-${kver}-unsigned`) ?? newestDeb(stanzas, `linux-image-${kver}`);
}

/**
 * Pure: `--secure-boot`'s kernel: linux-image-<kver> as built from linux-signed-<arch> (its
 * vmlinuz signed by Debian's Secure Boot key, which shim trusts), never the unsigned twin; none
 * when the archive has no signed build of it (an old ABI, a kernel Debian does not sign).
 */
export function pickSignedKernelDeb(stanzas: readonly LocatedStanza[], kver: string): KernelDebEntry | undefined {
  return newestDeb(
    stanzas.filter(({ stanza }) => /^linux-signed-/.test(stanza.get('source') ?? '')),
    `linux-image-${kver}`,
  );
}

/**
 * The kernel's .deb, downloaded once and kept under `debDir` by its sha256 (the signed index
 * gives it): later boots of that kernel read the cached file, checked again before use.
 */
export async function kernelDeb(input: {
  kernel: string;
  release: string;
  debianArch: string;
  debDir: string;
  index: IndexStoreOptions;
  /** the signed build only (pickSignedKernelDeb) */
  signed?: boolean;
}): Promise<{ entry: KernelDebEntry; file: string } | undefined> {
  const stanzas = await releaseStanzas(input.release, input.debianArch, IMAGE_STANZAS, input.index);
  const entry = input.signed ? pickSignedKernelDeb(stanzas, input.kernel) : pickKernelDeb(stanzas, input.kernel);
  if (!entry) return undefined;
  return { entry, file: await fetchDeb(entry, input.debDir) };
}
