import { createHash } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fromSystemError } from '../errors/system-error.js';
import { makeDirs } from './make-dir.js';

export interface WrittenFile {
  path: string;
  sha256: string;
  size: number;
}

/** Writes through a temporary name and renames: a reader never sees half a file. */
export async function writeAtomic(file: string, data: Buffer): Promise<WrittenFile> {
  await makeDirs(path.dirname(file));
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    // a full disk is the environment (exit 3), said with the file it hit
    throw fromSystemError(err, file) ?? err;
  }
  return { path: file, sha256: createHash('sha256').update(data).digest('hex'), size: data.length };
}
