import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
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
 * Pure: the entries of `name` among the stanzas (several suites may hold it), newest first. An
 * entry without a SHA256 and Size, or whose Filename is not a pool/ path of its mirror, is not
 * a candidate: the index names the file, and it must not point kfarm anywhere else.
 */
export function debCandidates(stanzas: readonly LocatedStanza[], name: string): DebEntry[] {
  return stanzas
    .filter(({ stanza }) => stanza.get('package') === name)
    .map(({ stanza, baseUrl }) => ({
      version: stanza.get('version') ?? '',
      filename: stanza.get('filename') ?? '',
      sha256: stanza.get('sha256') ?? '',
      size: Number(stanza.get('size') ?? 'NaN'),
      baseUrl,
    }))
    .filter((e) => /^[0-9a-f]{64}$/.test(e.sha256) && Number.isSafeInteger(e.size) && /^pool\/[A-Za-z0-9._+~/-]+\.deb$/.test(e.filename) && !e.filename.includes('..'))
    .sort((a, b) => compareDebianVersions(b.version, a.version))
    .map((e) => ({ package: name, version: e.version, url: `${e.baseUrl}/${e.filename}`, sha256: e.sha256, size: e.size }));
}

/** Pure: the newest candidate of `name` (debCandidates). */
export function newestDeb(stanzas: readonly LocatedStanza[], name: string): DebEntry | undefined {
  return debCandidates(stanzas, name)[0];
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

/**
 * The first of `candidates` (newest first) that downloads whole: an index may list a file its
 * mirror no longer serves (bullseye-security's arm64 busybox-static answers 404), and each
 * candidate is checked against the same signed index as the newest. None: the first error.
 */
export async function fetchFirstDeb(candidates: readonly DebEntry[], debDir: string, logger: Logger): Promise<{ entry: DebEntry; file: string }> {
  let firstError: Error | undefined;
  for (const entry of candidates) {
    try {
      return { entry, file: await fetchDeb(entry, debDir) };
    } catch (err) {
      logger.warn({ url: entry.url, err: (err as Error).message }, 'a .deb the index lists did not download; trying the next');
      firstError ??= err instanceof Error ? err : new Error(String(err));
    }
  }
  throw firstError ?? new KfarmError('COMMAND_FAILED', 'no .deb to fetch', { context: { debDir } });
}
