import path from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { KfarmError } from '../errors/kfarm-error.js';
import { packTar, safeRelativePath, type TarEntry } from '../executor/archive.js';
import { writeAtomic, type WrittenFile } from '../util/write-atomic.js';

/** A .tar.gz whose bytes depend only on the entries (fixed mtimes, no gzip timestamp). */
export async function writeTarGz(file: string, entries: readonly TarEntry[]): Promise<WrittenFile> {
  // Member names hold module names from builds: a `..` here would escape wherever it is unpacked.
  for (const entry of entries) {
    let safe: string;
    try {
      safe = safeRelativePath(entry.path);
    } catch (err) {
      throw new KfarmError('UNSAFE_ARCHIVE', `refused to pack ${path.basename(file)}: ${(err as Error).message}`, { context: { entry: entry.path } });
    }
    if (safe !== entry.path.replace(/\/$/, ''))
      throw new KfarmError('UNSAFE_ARCHIVE', `refused to pack ${path.basename(file)}: member name ${JSON.stringify(entry.path)} is not plain`, { context: { entry: entry.path } });
  }
  return writeAtomic(file, await gzipTar(await packTar(entries, './')));
}

const gzipAsync = promisify(gzip);

/**
 * Every .tar.gz kfarm writes (DKMS tarballs, the packages' payloads, image layers) goes
 * through here. Level 6, gzip's and `tar -z`'s default (what `dkms mktarball` writes): level 9
 * took 7.5 x the time for 0.7 % fewer bytes on a module bundle (1.30 s against 0.17 s for
 * 8 MB of gost-crypto's), which made a warm build, every result from the store, take 1.4 s.
 * On the thread pool: several tarballs compress at once and the event loop stays free for
 * the queue. The bytes depend only on the input (gzip headers carry no time here).
 */
export function gzipTar(tar: Buffer): Promise<Buffer> {
  return gzipAsync(tar, { level: 6 });
}
