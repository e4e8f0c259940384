import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import { KfarmError } from '../errors/kfarm-error.js';
import { extractTar, packTar, type TarEntry } from '../executor/archive.js';
import { findEscapingLink } from '../util/link-tree.js';

/** The module source, packed once: deterministic bytes, so its sha256 names the source. */
export interface SourceArchive {
  dir: string;
  tar: Buffer;
  sha256: string;
  files: number;
  dkmsConf: Buffer;
}

/** Version-control metadata never reaches a build: it is large and changes nothing. */
const SKIPPED = new Set(['.git', '.hg', '.svn']);
const MAX_SOURCE_BYTES = 256 * 1024 * 1024;
const BUILD_UID = 65534;

export async function packSource(dir: string): Promise<SourceArchive> {
  const root = path.resolve(dir);
  const info = await stat(root).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new KfarmError('SOURCE_NOT_FOUND', info ? `${dir} is not a directory` : `module source directory ${dir} does not exist`, {
      context: { source: root },
      hint: 'Pass the directory that holds the module source and its dkms.conf, e.g. `kfarm build examples/hello`.',
    });
  }
  const dkmsConf = await readFile(path.join(root, 'dkms.conf')).catch(() => undefined);
  if (!dkmsConf) {
    throw new KfarmError('DKMS_CONF_MISSING', `${dir} has no dkms.conf`, {
      context: { source: root },
      hint: 'kfarm builds what DKMS would: add a dkms.conf with at least PACKAGE_NAME, PACKAGE_VERSION and DEST_MODULE_LOCATION[0] (see examples/hello/dkms.conf).',
    });
  }
  const entries: TarEntry[] = [];
  let bytes = 0;
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(path.join(root, rel))).sort();
    for (const name of names) {
      if (SKIPPED.has(name)) continue;
      const relPath = rel === '' ? name : `${rel}/${name}`;
      const abs = path.join(root, relPath);
      const st = await lstat(abs);
      const mode = st.mode & 0o777;
      if (st.isDirectory()) {
        entries.push({ path: relPath, type: 'directory', mode, uid: BUILD_UID, gid: BUILD_UID });
        await walk(relPath);
      } else if (st.isFile()) {
        const data = await readFile(abs);
        bytes += data.length;
        if (bytes > MAX_SOURCE_BYTES) {
          throw new KfarmError('SOURCE_TOO_LARGE', `${dir} holds more than ${MAX_SOURCE_BYTES >> 20} MiB`, { hint: 'Build from a clean source tree (no build products, no large data files).' });
        }
        entries.push({ path: relPath, type: 'file', mode, data, uid: BUILD_UID, gid: BUILD_UID });
      } else if (st.isSymbolicLink()) {
        const target = await readlink(abs);
        const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(relPath), target));
        if (path.isAbsolute(target) || resolved === '..' || resolved.startsWith('../')) {
          throw new KfarmError('UNSAFE_ARCHIVE', `symlink ${relPath} -> ${target} points outside the source tree`, {
            hint: 'Replace it with the file it points to: a build container sees only the source tree.',
          });
        }
        entries.push({ path: relPath, type: 'symlink', mode: 0o777, linkname: target, uid: BUILD_UID, gid: BUILD_UID });
      }
      // sockets, fifos and devices are not source
    }
  };
  await walk('');
  // A chain of links (`d/l1 -> ..`, `a -> d/l1/..`) can leave the tree where no single one does.
  const escaping = findEscapingLink(entries);
  if (escaping) {
    throw new KfarmError('UNSAFE_ARCHIVE', `${dir}: ${escaping}`, {
      context: { source: root },
      hint: 'Replace the link with the file it points to: a build container sees only the source tree.',
    });
  }
  const tar = await packTar(entries);
  return { dir: root, tar, sha256: createHash('sha256').update(tar).digest('hex'), files: entries.length, dkmsConf };
}

/** Reads a packed source back (for the full DKMS tarball's dkms_source_tree/). */
export async function sourceEntries(tar: Buffer): Promise<TarEntry[]> {
  return extractTar(tar, { maxBytes: MAX_SOURCE_BYTES, maxEntries: 200_000, allowSymlinks: true }, 'module source');
}
