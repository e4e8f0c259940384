import { constants } from 'node:fs';
import { createHash } from 'node:crypto';
import { lstat, open, readdir, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import { KfarmError } from '../errors/kfarm-error.js';
import { packTar, type TarEntry } from '../executor/archive.js';
import { findLayoutProblem, resolveLink } from '../util/link-tree.js';
import { compileUnits } from './compile-units.js';
import { readSourceTar } from './read-source-tar.js';

/** The module source, packed once: deterministic bytes, so its sha256 names the source. */
export interface SourceArchive {
  dir: string;
  tar: Buffer;
  sha256: string;
  files: number;
  /** its .c and .S files: how long its builds take, roughly (job-priority.ts) */
  compileUnits: number;
  dkmsConf: Buffer;
  /** directories of the tree left out because they are kfarm's own (see PackSourceOptions.exclude), relative to it */
  excluded: Array<{ path: string; what: string }>;
}

export interface PackSourceOptions {
  /**
   * Directories never packed when they lie inside the tree: the out dir and the state dir
   * (`cd src && kfarm build .` writes dist/ there). Packed, each build's outputs would become
   * the next build's source: a new source hash every run (no cache hit) and a full tarball that
   * carries every earlier tarball (65 K, 202 K, 338 K). Matched by device and inode, so a
   * path spelled another way (a symlink, `./dist/`) is the same directory. Default: none.
   */
  exclude?: ReadonlyArray<{ path: string; what: string }>;
}

/** Version-control metadata never reaches a build: it is large and changes nothing. */
const SKIPPED = new Set(['.git', '.hg', '.svn']);
const MAX_SOURCE_BYTES = 256 * 1024 * 1024;
const BUILD_UID = 65534;

/**
 * Packs the tree as DKMS's `cp -a` copies it: files, directories, and symlinks as symlinks
 * whatever they point at (Debian packages ship e.g. `README.gz -> /usr/share/doc/...`). The
 * host never follows a link of the source: the walk uses lstat, a link to a directory is not
 * descended into, files are opened with O_NOFOLLOW, and dkms.conf is taken from the walked
 * entries (a link to it is resolved inside the tree only).
 */
export async function packSource(dir: string, options: PackSourceOptions = {}): Promise<SourceArchive> {
  const root = path.resolve(dir);
  const info = await stat(root).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new KfarmError('SOURCE_NOT_FOUND', info ? `${dir} is not a directory` : `module source directory ${dir} does not exist`, {
      context: { source: root },
      hint: 'Pass the directory that holds the module source and its dkms.conf, e.g. `kfarm build examples/hello`.',
    });
  }
  if (!(await lstat(path.join(root, 'dkms.conf')).catch(() => undefined))) throw confMissing(dir, root);
  const skipDirs = await existingDirs(options.exclude ?? []);
  const rootMatch = skipDirs.find((d) => d.dev === info.dev && d.ino === info.ino);
  if (rootMatch) {
    throw new KfarmError('BAD_OPTION', `${dir} is the ${rootMatch.what} itself: kfarm would pack its own outputs as the module source`, {
      context: { source: root },
      hint: 'Pass --out (or KFARM_STATE_DIR) outside the source tree, or in a subdirectory of it (left out of the source, e.g. the default dist).',
    });
  }
  const excluded: SourceArchive['excluded'] = [];
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
      if (st.isSymbolicLink()) {
        // carried as a link, its target text as written: never read through, never resolved on the host
        entries.push({ path: relPath, type: 'symlink', mode: 0o777, linkname: await readlink(abs), uid: BUILD_UID, gid: BUILD_UID });
      } else if (st.isDirectory()) {
        const skip = skipDirs.find((d) => d.dev === st.dev && d.ino === st.ino);
        if (skip) {
          excluded.push({ path: relPath, what: skip.what });
          continue;
        }
        entries.push({ path: relPath, type: 'directory', mode, uid: BUILD_UID, gid: BUILD_UID });
        await walk(relPath);
      } else if (st.isFile()) {
        bytes += st.size;
        if (bytes > MAX_SOURCE_BYTES) throw tooLarge(dir);
        const data = await readNoFollow(abs, relPath, dir);
        entries.push({ path: relPath, type: 'file', mode, data, uid: BUILD_UID, gid: BUILD_UID });
      } else {
        throw new KfarmError('UNSAFE_ARCHIVE', `${dir}: ${relPath} is a ${specialKind(st)}: a module source holds only files, directories and symlinks`, {
          context: { source: root, entry: relPath },
          hint: 'Remove it from the source tree (or build from a clean copy): no build needs it, and kfarm does not read or recreate special files.',
        });
      }
    }
  };
  await walk('');
  // A walk of a real directory cannot name a path twice or put one below a link; a check as cheap as this stays anyway.
  const layout = findLayoutProblem(entries);
  if (layout) throw new KfarmError('UNSAFE_ARCHIVE', `${dir}: ${layout}`, { context: { source: root } });
  const dkmsConf = dkmsConfOf(entries, dir, root);
  const tar = await packTar(entries);
  return {
    dir: root,
    tar,
    sha256: createHash('sha256').update(tar).digest('hex'),
    files: entries.length,
    compileUnits: compileUnits(entries.filter((e) => e.type === 'file').map((e) => e.path)),
    dkmsConf,
    excluded,
  };
}

/** The directories of `exclude` that exist, by device and inode (stat: a symlink to one counts). */
async function existingDirs(exclude: ReadonlyArray<{ path: string; what: string }>): Promise<Array<{ dev: number; ino: number; what: string }>> {
  const found: Array<{ dev: number; ino: number; what: string }> = [];
  for (const e of exclude) {
    const st = await stat(path.resolve(e.path)).catch(() => undefined);
    if (st?.isDirectory()) found.push({ dev: st.dev, ino: st.ino, what: e.what });
  }
  return found;
}

/** Reads a packed source back (for the full DKMS tarball's dkms_source_tree/): links, also those leading out, stay links. */
export async function sourceEntries(tar: Buffer): Promise<TarEntry[]> {
  return readSourceTar(tar, { maxBytes: MAX_SOURCE_BYTES, maxEntries: 200_000 }, 'module source');
}

/**
 * dkms.conf's bytes, from the walked entries. A dkms.conf that is a link is followed inside the
 * tree only (the container sees the same file there). One that leads out of the tree is refused:
 * its target would be the build host's file (or, in the container, the image's), never the one
 * the target machine's DKMS would read.
 */
function dkmsConfOf(entries: readonly TarEntry[], dir: string, root: string): Buffer {
  const byPath = new Map(entries.map((e) => [e.path, e]));
  const conf = byPath.get('dkms.conf');
  if (conf?.type === 'file' && conf.data) return conf.data;
  if (conf?.type !== 'symlink') throw confMissing(dir, root);
  const links = new Map(entries.flatMap((e) => (e.type === 'symlink' ? [[e.path, e.linkname ?? ''] as const] : [])));
  const where = resolveLink(links, conf.path, conf.linkname ?? '');
  const target = where === 'outside' || where === 'loop' ? undefined : byPath.get(where);
  if (target?.type === 'file' && target.data) return target.data;
  const why =
    where === 'outside'
      ? 'leads out of the source tree'
      : where === 'loop'
        ? 'does not resolve (a loop)'
        : `leads to ${where || 'the top of the tree'}, which is not a file of the tree`;
  throw new KfarmError('DKMS_CONF_INVALID', `${dir}: dkms.conf is a symlink (-> ${conf.linkname ?? ''}) that ${why}`, {
    context: { source: root },
    hint: "Put the dkms.conf itself at the top of the source tree: kfarm reads only the source tree, never a file of the build host, and DKMS on the target machine would read that machine's file.",
  });
}

/** A regular file's bytes; refuses (does not follow) a link or special file put there since the lstat. */
async function readNoFollow(abs: string, relPath: string, dir: string): Promise<Buffer> {
  const handle = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ELOOP')
      throw new KfarmError('UNSAFE_ARCHIVE', `${dir}: ${relPath} became a symlink while it was read`, { hint: 'Build from a source tree that nothing changes meanwhile.' });
    throw err;
  });
  try {
    if (!(await handle.stat()).isFile())
      throw new KfarmError('UNSAFE_ARCHIVE', `${dir}: ${relPath} stopped being a regular file while it was read`, {
        hint: 'Build from a source tree that nothing changes meanwhile.',
      });
    const data = await handle.readFile();
    if (data.length > MAX_SOURCE_BYTES) throw tooLarge(dir);
    return data;
  } finally {
    await handle.close();
  }
}

function specialKind(st: Awaited<ReturnType<typeof lstat>>): string {
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  return 'special file';
}

function confMissing(dir: string, root: string): KfarmError {
  return new KfarmError('DKMS_CONF_MISSING', `${dir} has no dkms.conf`, {
    context: { source: root },
    hint: 'kfarm builds what DKMS would: add a dkms.conf with at least PACKAGE_NAME, PACKAGE_VERSION and DEST_MODULE_LOCATION[0] (see examples/hello/dkms.conf).',
  });
}

function tooLarge(dir: string): KfarmError {
  return new KfarmError('SOURCE_TOO_LARGE', `${dir} holds more than ${MAX_SOURCE_BYTES >> 20} MiB`, {
    hint: 'Build from a clean source tree (no build products, no large data files).',
  });
}
