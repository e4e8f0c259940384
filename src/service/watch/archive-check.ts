import { createHash, randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { archiveCacheDir, type ArchiveSource } from '../../archive/archive-source.js';
import { discoverKernels, type DiscoveredKernel } from '../../archive/discover.js';
import type { DebianArch, ReleaseSpec } from '../../archive/releases.js';
import type { Logger } from '../../logging/logger.js';
import { makeDirs } from '../../util/make-dir.js';
import { compareOffers, offerKey, type OfferChange } from './archive-offers.js';

export interface ArchiveCheck extends OfferChange<DiscoveredKernel> {
  /** every kernel the archive offers for these releases and arches, newest first */
  kernels: DiscoveredKernel[];
  /** no earlier check of this source, releases and arches was recorded */
  first: boolean;
  /** suites the mirror does not serve, and the like */
  warnings: string[];
  /** Packages indexes downloaded by this check (0 when no InRelease changed) */
  downloaded: number;
}

/**
 * The watch's cheap look at the archive: what it offers and whether that changed since the
 * last check (recorded under $KFARM_STATE_DIR/watch/). Discovery keeps each suite's kernel
 * stanzas by the SHA256 its InRelease gives the index, so an unchanged archive costs one
 * InRelease GET per suite: no index download, and no HEAD per kernel (the sync that follows a
 * change checks those). The record is written only after a check that succeeded.
 */
export async function checkArchive(
  source: ArchiveSource,
  releases: readonly ReleaseSpec[],
  arches: readonly DebianArch[],
  stateDir: string,
  logger: Logger,
): Promise<ArchiveCheck> {
  const discovery = await discoverKernels(releases, arches, {
    cacheDir: archiveCacheDir(stateDir, source.mirrors),
    logger,
    mirrors: source.mirrors,
    ...(source.keyring ? { keyring: source.keyring } : {}),
    checkFetch: false,
  });
  const record = recordFile(stateDir, source, releases, arches);
  const previous = await readRecord(record);
  const change = compareOffers(previous, discovery.kernels);
  if (change.changed) await writeRecord(record, discovery.kernels.map(offerKey).sort());
  const downloaded = discovery.indexes.filter((i) => !i.fromCache).length;
  logger.info({ kernels: discovery.kernels.length, changed: change.changed, added: change.added.length, downloaded }, 'archive checked');
  return { ...change, kernels: discovery.kernels, first: previous === undefined, warnings: discovery.warnings, downloaded };
}

/** one record per (mirrors, releases, arches): a check of another scope is not compared with it */
function recordFile(stateDir: string, source: ArchiveSource, releases: readonly ReleaseSpec[], arches: readonly DebianArch[]): string {
  const scope = JSON.stringify([source.mirrors, releases.map((r) => r.name).sort(), [...arches].sort()]);
  return path.join(stateDir, 'watch', `archive-${createHash('sha256').update(scope).digest('hex').slice(0, 16)}.json`);
}

async function readRecord(file: string): Promise<string[] | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed: unknown = JSON.parse(text);
    const offered = (parsed as { offered?: unknown }).offered;
    return Array.isArray(offered) && offered.every((k) => typeof k === 'string') ? offered : undefined;
  } catch {
    return undefined; // a damaged record is as none: the next check reports everything as new
  }
}

async function writeRecord(file: string, offered: string[]): Promise<void> {
  await makeDirs(path.dirname(file));
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ offered }, null, 1)}\n`);
  await rename(tmp, file); // atomic: a crash leaves the old record or the new one
}
