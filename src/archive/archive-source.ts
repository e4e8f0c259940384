import { createHash } from 'node:crypto';
import path from 'node:path';
import { KfarmError } from '../errors/kfarm-error.js';
import { DEFAULT_MIRRORS, resolveMirrors, type Mirror } from './releases.js';

/**
 * Where kfarm reads the Debian archive: the mirrors (the archive and its security archive) and
 * the keyring their InRelease files are checked against. The CLI builds one from --mirror,
 * --security-mirror and --keyring; `kfarm serve` passes its own. Left out, Debian's mirrors and
 * usableKeyring()'s choice ($KFARM_ARCHIVE_KEYRING, else Debian's keys).
 */
export interface ArchiveSource {
  mirrors: Readonly<Record<Mirror, string>>;
  /** a keyring file gpgv (and apt in the image builds) accepts; default: usableKeyring()'s */
  keyring?: string;
}

export const DEFAULT_ARCHIVE_SOURCE: ArchiveSource = { mirrors: DEFAULT_MIRRORS };

/** Pure: the source the CLI's options name (each option checked: an http(s) URL, a non-empty path). */
export function resolveArchiveSource(options: { mirror?: string; securityMirror?: string; keyring?: string }): ArchiveSource {
  if (options.keyring !== undefined && options.keyring.trim() === '') {
    throw new KfarmError('BAD_OPTION', '--keyring is empty', { hint: 'Name a keyring file (gpg --export output) holding the key the mirror signs its InRelease with.' });
  }
  return { mirrors: resolveMirrors(options), ...(options.keyring !== undefined ? { keyring: options.keyring } : {}) };
}

/**
 * Pure: where a source's indexes are cached: $KFARM_STATE_DIR/archive for Debian's mirrors, a
 * folder per other set of mirrors below it. The cache keeps one index per mirror name and suite
 * (the newest read), so two mirrors sharing it would evict each other's at every read and an
 * unchanged archive would no longer cost only its InRelease.
 */
export function archiveCacheDir(stateDir: string, mirrors: Readonly<Record<Mirror, string>>): string {
  const root = path.join(stateDir, 'archive');
  if (usesDebianMirrors(mirrors)) return root;
  const key = createHash('sha256')
    .update(JSON.stringify([mirrors.debian, mirrors['debian-security']]))
    .digest('hex')
    .slice(0, 16);
  return path.join(root, 'mirrors', key);
}

/** Pure: whether the mirrors are Debian's own (image builds then use the recipe's sources as they are). */
export function usesDebianMirrors(mirrors: Readonly<Record<Mirror, string>>): boolean {
  return (Object.keys(DEFAULT_MIRRORS) as Mirror[]).every((m) => mirrors[m] === DEFAULT_MIRRORS[m]);
}
