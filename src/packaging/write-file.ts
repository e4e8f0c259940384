import { createHash } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { packTar, type TarEntry } from '../executor/archive.js';

export interface WrittenFile {
  path: string;
  sha256: string;
  size: number;
}

/** Writes through a temporary name and renames: a reader never sees half a file. */
export async function writeAtomic(file: string, data: Buffer): Promise<WrittenFile> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return { path: file, sha256: createHash('sha256').update(data).digest('hex'), size: data.length };
}

/** A .tar.gz whose bytes depend only on the entries (fixed mtimes, no gzip timestamp). */
export async function writeTarGz(file: string, entries: readonly TarEntry[]): Promise<WrittenFile> {
  const tar = await packTar(entries, './');
  return writeAtomic(file, gzipSync(tar, { level: 9 }));
}
