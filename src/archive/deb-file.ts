import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import tar from 'tar-stream';
import { KfarmError } from '../errors/kfarm-error.js';

/**
 * Reading one file out of a .deb in Node, no dpkg needed (kfarm runs on hosts without it): a
 * .deb is an `ar` archive (debian-binary, control.tar.*, data.tar.*), its data member a tar
 * compressed with xz (Debian's default), gzip, zstd or none. xz and zstd go through their
 * commands (`-dc`), as the archive's indexes do.
 */
const AR_MAGIC = '!<arch>\n';
const AR_HEADER = 60;

/** Pure: the members of an ar archive, name → bytes. */
export function arMembers(data: Buffer): Map<string, Buffer> {
  if (data.subarray(0, AR_MAGIC.length).toString('latin1') !== AR_MAGIC) throw new Error('not an ar archive');
  const members = new Map<string, Buffer>();
  let at = AR_MAGIC.length;
  while (at + AR_HEADER <= data.length) {
    const header = data.subarray(at, at + AR_HEADER);
    if (header.subarray(58, 60).toString('latin1') !== '`\n') throw new Error(`a broken ar header at byte ${at}`);
    const name = header.subarray(0, 16).toString('latin1').trim().replace(/\/$/, '');
    const size = Number(header.subarray(48, 58).toString('latin1').trim());
    if (!Number.isSafeInteger(size) || size < 0 || at + AR_HEADER + size > data.length) throw new Error(`ar member ${name} runs past the end`);
    members.set(name, data.subarray(at + AR_HEADER, at + AR_HEADER + size));
    at += AR_HEADER + size + (size % 2); // members are padded to an even offset
  }
  return members;
}

async function dataTar(deb: Buffer): Promise<Buffer> {
  const members = arMembers(deb);
  const name = [...members.keys()].find((n) => /^data\.tar(\.(xz|gz|zst))?$/.test(n));
  const packed = name === undefined ? undefined : members.get(name);
  if (name === undefined || packed === undefined) throw new Error('no data.tar member');
  if (name.endsWith('.gz')) return gunzipSync(packed);
  if (name === 'data.tar') return packed;
  const tool = name.endsWith('.xz') ? 'xz' : 'zstd';
  const result = await execa(tool, ['-dc'], { input: packed, encoding: 'buffer', reject: false, stripFinalNewline: false, maxBuffer: 1 << 30 });
  if (result.exitCode !== 0) throw new Error(`${tool} -dc failed: ${Buffer.from(result.stderr).toString('utf8').trim() || result.message}`);
  return Buffer.from(result.stdout);
}

/** The regular file `member` (`./bin/busybox` or `bin/busybox`) of a .deb's data, or undefined where the package has none. */
export async function debFile(deb: Buffer, member: string, what: string): Promise<Buffer | undefined> {
  const want = member.replace(/^\.?\//, '');
  let tarBytes: Buffer;
  try {
    tarBytes = await dataTar(deb);
  } catch (err) {
    throw new KfarmError('UNSAFE_ARCHIVE', `${what} is not a readable .deb: ${(err as Error).message}`, { context: { deb: what } });
  }
  const extract = tar.extract();
  let found: Buffer | undefined;
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      // a tar cut short fails the entry's stream too: unheard, that error would be uncaught and end the process
      stream.on('error', reject);
      const chunks: Buffer[] = [];
      const mine = header.type === 'file' && header.name.replace(/^\.?\//, '') === want;
      stream.on('data', (c: unknown) => {
        if (mine) chunks.push(c as Buffer);
      });
      stream.on('end', () => {
        if (mine) found = Buffer.concat(chunks);
        next();
      });
      stream.resume();
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  Readable.from([tarBytes]).pipe(extract);
  try {
    await done;
  } catch (err) {
    throw new KfarmError('UNSAFE_ARCHIVE', `${what}: its data.tar is broken: ${(err as Error).message}`, { context: { deb: what } });
  }
  return found;
}
