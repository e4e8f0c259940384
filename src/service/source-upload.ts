import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { KfarmError } from '../errors/kfarm-error.js';
import { packTar, type TarEntry } from '../executor/archive.js';
import { readSourceTar } from '../source/read-source-tar.js';
import { packSource } from '../source/source-archive.js';
import { writeSourceTree } from '../source/write-source-tree.js';
import { makeDirs } from '../util/make-dir.js';
import { writeAtomic } from '../util/write-atomic.js';
import { sourceFile, type ServicePaths } from './service-paths.js';

/** What an upload may be, packed or unpacked: the same cap `kfarm build` puts on a source dir. */
export const MAX_SOURCE_BYTES = 256 * 1024 * 1024;
const LIMITS = { maxBytes: MAX_SOURCE_BYTES, maxEntries: 200_000 };

export interface AcceptedSource {
  /** sha256 of the source as stored (a plain tar with dkms.conf at its root) */
  sha256: string;
  /** PACKAGE_NAME / PACKAGE_VERSION where dkms.conf sets them to plain words (DKMS evaluates it per kernel; builds settle it) */
  declared: { name?: string; version?: string };
}

/**
 * A module source sent over the API (tar, or tar.gz), checked as `kfarm build` checks a source
 * dir: the same safe reader (no absolute or `..` names, nothing below a link, caps), then
 * unpacked into a scratch dir and packed by packSource, which refuses what a source dir may not
 * hold and a missing dkms.conf. One top directory (`hello-1.0/dkms.conf`) is taken as the root.
 * Stored by the sha256 of its normalised tar; the scratch dir is removed whatever happens.
 */
export async function acceptSource(body: Buffer, paths: ServicePaths, scratch: string): Promise<AcceptedSource> {
  const entries = rooted(
    await readSourceTar(unpacked(body), LIMITS, 'the uploaded source').catch((err: unknown) => {
      if (err instanceof KfarmError) throw err;
      // tar-stream's own complaint (a bad checksum, a truncated header): the sender's archive, not the farm
      throw new KfarmError('UNSAFE_ARCHIVE', `the uploaded source is not a valid tar: ${(err as Error).message}`, {
        hint: 'Send the module source as a tar or tar.gz of its directory (tar -C <dir> -czf - .).',
      });
    }),
  );
  const tree = path.join(scratch, `upload-${randomBytes(6).toString('hex')}`);
  try {
    await makeDirs(scratch);
    await writeSourceTree(entries, tree);
    await packSource(tree); // throws DKMS_CONF_MISSING, UNSAFE_ARCHIVE... as kfarm build does
  } finally {
    await rm(tree, { recursive: true, force: true });
  }
  const tar = await packTar(entries);
  const sha256 = createHash('sha256').update(tar).digest('hex');
  const file = sourceFile(paths, sha256);
  if (!existsSync(file)) {
    await makeDirs(paths.sources);
    await writeAtomic(file, tar);
  }
  const conf = entries.find((e) => e.path === 'dkms.conf' && e.type === 'file')?.data;
  return { sha256, declared: conf ? declaredIdentity(conf.toString('utf8')) : {} };
}

/** Unpacks a stored source into `dir` (which must not exist) for a build. */
export async function unpackSource(paths: ServicePaths, sha256: string, dir: string): Promise<void> {
  const file = sourceFile(paths, sha256);
  const tar = await readFile(file).catch((err: NodeJS.ErrnoException) => {
    throw new KfarmError('FILE_SYSTEM', `the stored source ${sha256.slice(0, 12)} cannot be read (${err.code ?? err.message})`, {
      context: { file },
      hint: 'Upload the module source again (PUT /api/v1/modules/<name>).',
    });
  });
  if (createHash('sha256').update(tar).digest('hex') !== sha256) {
    throw new KfarmError('FILE_SYSTEM', `the stored source ${file} does not match its sha256: it changed on disk`, { context: { file }, hint: 'Upload the module source again.' });
  }
  await writeSourceTree(await readSourceTar(tar, LIMITS, 'a stored source'), dir);
}

function unpacked(body: Buffer): Buffer {
  if (body.length < 2 || body[0] !== 0x1f || body[1] !== 0x8b) return body;
  try {
    return gunzipSync(body, { maxOutputLength: MAX_SOURCE_BYTES });
  } catch (err) {
    const big = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
    throw new KfarmError(
      big ? 'SOURCE_TOO_LARGE' : 'UNSAFE_ARCHIVE',
      big ? `the uploaded source unpacks to more than ${MAX_SOURCE_BYTES} bytes` : `the uploaded source is not a valid gzip: ${(err as Error).message}`,
      {
        hint: 'Send the module source as a tar or tar.gz of its directory (tar -C <dir> -czf - .).',
      },
    );
  }
}

/** Pure: dkms.conf at the root, or the one top directory that holds it taken as the root. */
export function rooted(entries: TarEntry[]): TarEntry[] {
  if (entries.some((e) => e.path === 'dkms.conf')) return entries;
  const tops = new Set(entries.map((e) => e.path.split('/')[0]));
  const [top] = tops;
  if (tops.size === 1 && top !== undefined && entries.some((e) => e.path === `${top}/dkms.conf`)) {
    return entries.filter((e) => e.path !== top).map((e) => ({ ...e, path: e.path.slice(top.length + 1) }));
  }
  throw new KfarmError('DKMS_CONF_MISSING', 'the uploaded source has no dkms.conf at its root (or in its one top directory)', {
    hint: 'Send the directory that holds the module source and its dkms.conf: tar -C <dir> -czf - .',
  });
}

/** Pure: PACKAGE_NAME and PACKAGE_VERSION when dkms.conf assigns them plain words (no expansion). */
export function declaredIdentity(conf: string): { name?: string; version?: string } {
  const word = (key: string) => new RegExp(`^\\s*${key}=["']?([A-Za-z0-9_.+~-]+)["']?\\s*(?:#.*)?$`, 'm').exec(conf)?.[1];
  const name = word('PACKAGE_NAME');
  const version = word('PACKAGE_VERSION');
  return { ...(name ? { name } : {}), ...(version ? { version } : {}) };
}
