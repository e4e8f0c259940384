import { mkdir, open, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';

/** The containers and compressions unpackAll opens, named after what opened them. */
export type Opened = 'gzip' | 'xz' | 'zstd' | 'tar' | 'deb' | 'rpm';

export interface Unpacked {
  /** every regular file under the root and inside what was opened: the archives themselves too */
  files: string[];
  /** how many of each kind were opened, so a caller can check it really looked inside */
  opened: Record<Opened, number>;
}

const MAX_DEPTH = 8;

/**
 * Every file under `root`, with each archive and compressed file in it opened, recursively,
 * into `scratch`: gzip, xz (a 6.12 `.ko.xz`), zstd, tar (DKMS tarballs, OCI layers), .deb
 * (dpkg-deb -R: control files and data) and .rpm (rpm2archive | tar; its header, which holds the
 * scripts, is not compressed and is searched as the .rpm's own bytes). Kinds are told by magic
 * bytes, not names, as an OCI layout's blobs have none. What a reader of --out can get at,
 * for tests that must find a secret wherever it was put.
 */
export async function unpackAll(root: string, scratch: string): Promise<Unpacked> {
  const result: Unpacked = { files: [], opened: { gzip: 0, xz: 0, zstd: 0, tar: 0, deb: 0, rpm: 0 } };
  let next = 0;
  const walk = async (dir: string, depth: number): Promise<void> => {
    for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
      if (!e.isFile()) continue;
      const file = path.join(e.parentPath, e.name);
      result.files.push(file);
      const kind = await kindOf(file);
      if (!kind) continue;
      if (depth >= MAX_DEPTH) throw new Error(`${file}: archives nested more than ${MAX_DEPTH} deep`);
      const into = path.join(scratch, String(next++));
      await mkdir(into, { recursive: true });
      await openInto(kind, file, into);
      result.opened[kind] += 1;
      await walk(into, depth + 1);
    }
  };
  await walk(root, 0);
  return result;
}

async function kindOf(file: string): Promise<Opened | undefined> {
  const handle = await open(file, 'r');
  const head = Buffer.alloc(512);
  try {
    await handle.read(head, 0, 512, 0);
  } finally {
    await handle.close();
  }
  const starts = (...bytes: number[]) => bytes.every((b, i) => head[i] === b);
  if (starts(0x1f, 0x8b)) return 'gzip';
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'xz';
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return 'zstd';
  if (starts(0xed, 0xab, 0xee, 0xdb)) return 'rpm';
  if (head.subarray(0, 8).toString('latin1') === '!<arch>\n') return 'deb';
  if (head.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
  return undefined;
}

async function openInto(kind: Opened, file: string, into: string): Promise<void> {
  const sh = (script: string) => execa('sh', ['-c', script, 'sh', file, into]);
  switch (kind) {
    case 'gzip':
      await writeFile(path.join(into, 'data'), gunzipSync(await readFile(file)));
      return;
    case 'xz':
      await sh('xz -dc -- "$1" > "$2/data"');
      return;
    case 'zstd':
      await sh('zstd -q -dc -- "$1" > "$2/data"');
      return;
    case 'tar':
      await execa('tar', ['-xf', file, '-C', into, '--no-same-owner', '--no-same-permissions']);
      return;
    case 'deb':
      await execa('dpkg-deb', ['-R', file, path.join(into, 'root')]);
      return;
    case 'rpm':
      await sh('rpm2archive -n - < "$1" | tar -x -C "$2" --no-same-owner --no-same-permissions');
      return;
  }
}
