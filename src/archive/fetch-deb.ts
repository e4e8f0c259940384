import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { KfarmError } from '../errors/kfarm-error.js';
import { makeDirs } from '../util/make-dir.js';
import { archiveGet } from './archive-get.js';
import { compareDebianVersions } from './debian-version.js';
import type { LocatedStanza } from './package-stanzas.js';

/** The archive's entry of one .deb: where it is and what it must hash to (from the signed index). */
export interface DebEntry {
  package: string;
  version: string;
  url: string;
  sha256: string;
  size: number;
}

/**
 * Pure: the newest `name` among the stanzas (several suites may hold it). An entry without a
 * SHA256 and Size, or whose Filename is not a pool/ path of its mirror, is not a candidate:
 * the index names the file, and it must not point kfarm anywhere else.
 */
export function newestDeb(stanzas: readonly LocatedStanza[], name: string): DebEntry | undefined {
  const found = stanzas
    .filter(({ stanza }) => stanza.get('package') === name)
    .map(({ stanza, baseUrl }) => ({
      version: stanza.get('version') ?? '',
      filename: stanza.get('filename') ?? '',
      sha256: stanza.get('sha256') ?? '',
      size: Number(stanza.get('size') ?? 'NaN'),
      baseUrl,
    }))
    .filter((e) => /^[0-9a-f]{64}$/.test(e.sha256) && Number.isSafeInteger(e.size) && /^pool\/[A-Za-z0-9._+~/-]+\.deb$/.test(e.filename) && !e.filename.includes('..'))
    .sort((a, b) => compareDebianVersions(b.version, a.version));
  const best = found[0];
  return best && { package: name, version: best.version, url: `${best.baseUrl}/${best.filename}`, sha256: best.sha256, size: best.size };
}

/** `<debDir>/<sha256>.deb` when it is there and still hashes to its name, else undefined (a bad one is removed). */
export async function cachedDeb(sha256: string, debDir: string): Promise<string | undefined> {
  const file = path.join(debDir, `${sha256}.deb`);
  if (!existsSync(file)) return undefined;
  const have = createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
  if (have === sha256) return file;
  await rm(file, { force: true });
  return undefined;
}

/**
 * The entry's .deb, downloaded once and kept as `<debDir>/<sha256>.deb`: later calls read the
 * cached file, hashed again before use. A download that does not hash to the index's SHA256
 * is refused and nothing is kept.
 */
export async function fetchDeb(entry: DebEntry, debDir: string, options: { timeoutMs?: number } = {}): Promise<string> {
  const have = await cachedDeb(entry.sha256, debDir);
  if (have) return have;
  const res = await archiveGet(entry.url, options.timeoutMs ?? 600_000);
  const got = createHash('sha256').update(res.body).digest('hex');
  if (res.status !== 200 || got !== entry.sha256) {
    throw new KfarmError(
      'COMMAND_FAILED',
      `${entry.url} did not download whole or was altered (HTTP ${res.status}, sha256 ${got.slice(0, 12)}… not the index's ${entry.sha256.slice(0, 12)}…)`,
      {
        context: { url: entry.url, sha256: got, expected: entry.sha256 },
        hint: 'Run the command again; the mirror may be mid-update.',
      },
    );
  }
  await makeDirs(debDir);
  const file = path.join(debDir, `${entry.sha256}.deb`);
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, res.body);
  await rename(tmp, file);
  return file;
}
