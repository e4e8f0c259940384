import { Readable } from 'node:stream';
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import tar from 'tar-stream';
import { KfarmError } from '../errors/kfarm-error.js';
import { capProblem, type LdLimits, type RawEntry } from './plan.js';

/**
 * A DKMS tarball from disk into raw entries, every type kept (the plan refuses what it must,
 * with the entry's name). Compression is found by magic bytes, as `tar -xaf` does: gzip
 * (kfarm, dkms' default), xz, bzip2, zstd, or none. The caps are enforced while reading, so
 * a bomb stops early: unpacked size (tar headers included) and entry count.
 */
export async function readTarball(file: string, limits: LdLimits): Promise<RawEntry[]> {
  let packed: Buffer;
  try {
    packed = await readFile(file);
  } catch (err) {
    throw new KfarmError('SOURCE_NOT_FOUND', `${file}: cannot read the tarball (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
      context: { tarball: file },
      hint: 'Give the path of a .dkms.tar.gz file.',
    });
  }
  // tar adds a 512-byte header per entry plus padding: allow for it in the unpacked size
  const maxTar = limits.maxBytes + 1024 * (limits.maxEntries + 2);
  const tarBytes = await decompress(file, packed, maxTar);
  return readEntries(file, tarBytes, limits);
}

async function decompress(file: string, packed: Buffer, maxTar: number): Promise<Buffer> {
  const tooBig = () => new KfarmError('SOURCE_TOO_LARGE', `${file}: larger than ${maxTar} bytes unpacked; nothing was loaded`, { context: { tarball: file } });
  const magic = packed.subarray(0, 6);
  if (magic[0] === 0x1f && magic[1] === 0x8b) {
    try {
      return gunzipSync(packed, { maxOutputLength: maxTar });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooBig();
      throw badTarball(file, `gzip: ${(err as Error).message}`);
    }
  }
  const tool = magic.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))
    ? 'xz'
    : magic.subarray(0, 3).toString('latin1') === 'BZh'
      ? 'bzip2'
      : magic.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))
        ? 'zstd'
        : undefined;
  if (!tool) return packed;
  const result = await execa(tool, ['-dc'], { input: packed, encoding: 'buffer', maxBuffer: maxTar, reject: false, stripFinalNewline: false });
  if (result.isMaxBuffer) throw tooBig();
  if (result.exitCode !== 0)
    throw badTarball(file, `${tool} -d failed: ${Buffer.from(result.stderr).toString('utf8').trim() || (result.failed ? result.message : `exit ${result.exitCode}`)}`);
  return Buffer.from(result.stdout);
}

function badTarball(file: string, message: string): KfarmError {
  return new KfarmError('UNSAFE_ARCHIVE', `${file}: not a readable tarball (${message}); nothing was loaded`, { context: { tarball: file } });
}

async function readEntries(file: string, input: Buffer, limits: LdLimits): Promise<RawEntry[]> {
  const extract = tar.extract();
  const entries: RawEntry[] = [];
  let total = 0;
  const finished = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const fail = (err: KfarmError) => {
        stream.resume();
        reject(err);
        extract.destroy();
      };
      const capped = () => {
        const cap = capProblem(entries.length + 1, total, limits);
        return cap ? new KfarmError(cap.code, `${file}: ${cap.message}; nothing was loaded`, { context: { tarball: file } }) : undefined;
      };
      const early = capped();
      if (early) return fail(early);
      // a tar cut short fails the entry's stream too: unheard, that error would be uncaught and end the process
      stream.on('error', (err) => reject(badTarball(file, err.message)));
      const chunks: Buffer[] = [];
      stream.on('data', (data: unknown) => {
        const chunk = data as Buffer;
        total += chunk.length;
        const cap = capped();
        if (cap) return fail(cap);
        chunks.push(chunk);
      });
      stream.on('end', () => {
        const data = Buffer.concat(chunks);
        entries.push({
          name: header.name,
          type: header.type ?? 'file',
          size: data.length,
          mode: header.mode ?? 0o644,
          linkname: header.linkname ?? undefined,
          ...(header.type === 'file' || header.type === 'contiguous-file' ? { data } : {}),
        });
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', (err) => reject(err instanceof KfarmError ? err : badTarball(file, err.message)));
  });
  Readable.from([input]).pipe(extract);
  await finished;
  return entries;
}
