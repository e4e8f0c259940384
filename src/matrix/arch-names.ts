/**
 * Architectures by both names: Debian's (amd64, arm64) and the kernel's `uname -m`, which is
 * also dkms's arch (x86_64, aarch64). Targets carry the uname name.
 */
export const UNAME_OF_DEBIAN: Readonly<Record<string, string>> = { amd64: 'x86_64', arm64: 'aarch64' };

/** amd64 → x86_64, arm64 → aarch64; a uname name or an unknown name stays as it is (lower-cased). */
export function toUnameArch(name: string): string {
  const lower = name.trim().toLowerCase();
  return UNAME_OF_DEBIAN[lower] ?? lower;
}
