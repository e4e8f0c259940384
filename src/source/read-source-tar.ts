import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { KfarmError } from '../errors/kfarm-error.js';
import { nameConflict, safeRelativePath, type TarEntry } from '../executor/archive.js';
import { findLayoutProblem } from '../util/link-tree.js';

/**
 * Reads a packed module source back into entries (for the full DKMS tarball's
 * dkms_source_tree/). Unlike extractTar, which guards what a build hands back, it keeps links
 * that lead out of the tree: a source may ship them (DKMS copies them as links) and they are
 * only ever re-packed as links, never written to the host's disk or followed. Everything else
 * is held to the same rules: plain relative names, files, directories and symlinks only,
 * nothing written through a link, caps on bytes and entries.
 */
export async function readSourceTar(input: Buffer, limits: { maxBytes: number; maxEntries: number }, label: string): Promise<TarEntry[]> {
  const extract = tar.extract();
  const entries: TarEntry[] = [];
  let total = 0;
  const seen = new Map<string, string>();
  const refuse = (code: 'UNSAFE_ARCHIVE' | 'SOURCE_TOO_LARGE', message: string, entry?: string) =>
    new KfarmError(code, `${label}: ${message}`, entry === undefined ? {} : { context: { entry } });
  const finished = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const fail = (err: KfarmError) => {
        stream.resume();
        reject(err);
        extract.destroy();
      };
      let entryPath: string;
      try {
        entryPath = safeRelativePath(header.name);
      } catch (err) {
        return fail(refuse('UNSAFE_ARCHIVE', (err as Error).message, header.name));
      }
      if (entries.length >= limits.maxEntries) return fail(refuse('UNSAFE_ARCHIVE', `more than ${limits.maxEntries} entries`));
      // "", "." and "./" name the tree itself: only a directory may say so
      if (entryPath === '' && header.type !== 'directory')
        return fail(refuse('UNSAFE_ARCHIVE', `a ${header.type ?? 'file'} entry without a name (${JSON.stringify(header.name)})`, header.name));
      const conflict = nameConflict(seen, entryPath, header.type ?? 'file');
      if (conflict) return fail(refuse('UNSAFE_ARCHIVE', conflict, entryPath));
      // a tar cut short fails the entry's stream too: unheard, that error would be uncaught and end the process
      stream.on('error', reject);
      const chunks: Buffer[] = [];
      stream.on('data', (chunk) => {
        const data = chunk as Buffer;
        total += data.length;
        if (total > limits.maxBytes) return fail(refuse('SOURCE_TOO_LARGE', `larger than ${limits.maxBytes} bytes`));
        chunks.push(data);
      });
      stream.on('end', () => {
        const base = { path: entryPath, mode: header.mode ?? 0o644, uid: header.uid ?? 0, gid: header.gid ?? 0 };
        if (header.type === 'file') entries.push({ ...base, type: 'file', data: Buffer.concat(chunks) });
        else if (header.type === 'directory') {
          if (entryPath !== '') entries.push({ ...base, type: 'directory' });
        } else if (header.type === 'symlink') entries.push({ ...base, type: 'symlink', linkname: header.linkname ?? '' });
        else return fail(refuse('UNSAFE_ARCHIVE', `${header.type} entries are not allowed (${entryPath})`, entryPath));
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  Readable.from([input]).pipe(extract);
  await finished;
  const layout = findLayoutProblem(entries);
  if (layout) throw refuse('UNSAFE_ARCHIVE', layout);
  return entries;
}
