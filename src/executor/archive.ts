import { Readable } from 'node:stream';
import path from 'node:path';
import tar from 'tar-stream';
import { KfarmError } from '../errors/kfarm-error.js';
import { findEscapingLink } from '../util/link-tree.js';

/**
 * Tar in memory, both ways, with the checks that make a tarball from outside safe to use:
 * no absolute paths, no `..`, no links leaving the tree, caps on size and entry count.
 */
export interface TarEntry {
  /** relative, forward slashes, no leading ./ */
  path: string;
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  data?: Buffer;
  linkname?: string;
  uid?: number;
  gid?: number;
  mtime?: Date;
}

/** Fixed timestamp for everything kfarm packs: the same input gives the same bytes. */
export const EPOCH = new Date('2000-01-01T00:00:00Z');

export async function packTar(entries: readonly TarEntry[], prefix = ''): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk) => chunks.push(chunk as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const entry of entries) {
    const name = prefix + entry.path + (entry.type === 'directory' && !entry.path.endsWith('/') ? '/' : '');
    const header = {
      name,
      mode: entry.mode,
      uid: entry.uid ?? 0,
      gid: entry.gid ?? 0,
      mtime: entry.mtime ?? EPOCH,
      type: entry.type,
      ...(entry.type === 'symlink' ? { linkname: entry.linkname ?? '' } : {}),
    } as const;
    await new Promise<void>((resolve, reject) => {
      const callback = (err?: Error | null) => (err ? reject(err) : resolve());
      pack.entry(header, entry.type === 'file' ? (entry.data ?? Buffer.alloc(0)) : Buffer.alloc(0), callback);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export interface ExtractLimits {
  maxBytes: number;
  maxEntries: number;
  /** symlinks are refused unless allowed, and then only when they stay inside the tree */
  allowSymlinks: boolean;
}

export async function extractTar(input: Buffer | Readable, limits: ExtractLimits, label: string): Promise<TarEntry[]> {
  const extract = tar.extract();
  const entries: TarEntry[] = [];
  const seen = new Map<string, string>();
  let total = 0;
  const source = Buffer.isBuffer(input) ? Readable.from([input]) : input;
  const finished = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const fail = (message: string) => {
        stream.resume();
        reject(new KfarmError('UNSAFE_ARCHIVE', `${label}: ${message}`, { context: { entry: header.name } }));
        extract.destroy();
      };
      let entryPath: string;
      try {
        entryPath = safeRelativePath(header.name);
      } catch (err) {
        return fail((err as Error).message);
      }
      // "", "." and "./" name the tree itself: only a directory may say so
      if (entryPath === '' && header.type !== 'directory') return fail(`a ${header.type ?? 'file'} entry without a name (${JSON.stringify(header.name)})`);
      if (entries.length >= limits.maxEntries) return fail(`more than ${limits.maxEntries} entries`);
      const conflict = nameConflict(seen, entryPath, header.type ?? 'file');
      if (conflict) return fail(conflict);
      // a tar cut short fails the entry's stream too: unheard, that error would be uncaught and end the process
      stream.on('error', reject);
      const chunks: Buffer[] = [];
      stream.on('data', (data) => {
        const chunk = data as Buffer;
        total += chunk.length;
        if (total > limits.maxBytes) {
          reject(new KfarmError('OUTPUT_TOO_LARGE', `${label}: larger than ${limits.maxBytes} bytes`));
          extract.destroy();
          return;
        }
        chunks.push(chunk);
      });
      stream.on('end', () => {
        const base = { path: entryPath, mode: header.mode ?? 0o644, mtime: header.mtime ?? EPOCH };
        if (header.type === 'file' || header.type === 'contiguous-file') {
          entries.push({ ...base, type: 'file', data: Buffer.concat(chunks) });
        } else if (header.type === 'directory') {
          if (entryPath !== '') entries.push({ ...base, type: 'directory' });
        } else if (header.type === 'symlink' && limits.allowSymlinks) {
          const target = header.linkname ?? '';
          if (path.posix.isAbsolute(target) || escapes(path.posix.join(path.posix.dirname(entryPath), target))) {
            return fail(`symlink ${entryPath} -> ${target} points outside the tree`);
          }
          entries.push({ ...base, type: 'symlink', linkname: target });
        } else {
          return fail(`${header.type} entries are not allowed (${entryPath})`);
        }
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  source.on('error', (err) => extract.destroy(err));
  source.pipe(extract);
  await finished;
  // Each link passed the textual check on its own; a chain of them may still lead out.
  const escaping = limits.allowSymlinks ? findEscapingLink(entries) : undefined;
  if (escaping) throw new KfarmError('UNSAFE_ARCHIVE', `${label}: ${escaping}`);
  return entries;
}

/**
 * Why `entryPath` cannot join the entries read so far (`seen`: path → tar type, the directories
 * above each entry included; updated when it can): a name twice (a tar appended to: which copy
 * would the tree hold? a directory again is the same directory), or a name below a file, or a
 * file where something was below. Writing such a tree fails with EEXIST or ENOTDIR half way.
 * Below a symlink is findLayoutProblem's to say.
 */
export function nameConflict(seen: Map<string, string>, entryPath: string, type: string): string | undefined {
  const earlier = seen.get(entryPath);
  if (earlier !== undefined && !(earlier === 'directory' && type === 'directory')) return `${entryPath} appears twice in the tar (a ${earlier}, then a ${type})`;
  const parts = entryPath.split('/');
  for (let i = 1; i < parts.length; i++) {
    const up = parts.slice(0, i).join('/');
    const kind = seen.get(up);
    if (kind !== undefined && kind !== 'directory' && kind !== 'symlink') return `${entryPath} is below ${up}, which is a ${kind}`;
    if (kind === undefined) seen.set(up, 'directory');
  }
  seen.set(entryPath, type);
  return undefined;
}

/** Normalises a tar member name; throws for absolute paths and `..`. */
export function safeRelativePath(name: string): string {
  if (name.startsWith('/')) throw new Error(`absolute path ${name}`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new Error(`path with .. (${name})`);
  return parts.join('/');
}

function escapes(joined: string): boolean {
  const normal = path.posix.normalize(joined);
  return normal === '..' || normal.startsWith('../') || path.posix.isAbsolute(normal);
}
