import type { SourceArchive } from '../source/source-archive.js';
import type { BuildDeps } from './build-types.js';
import type { FarmSession } from './farm-session.js';

/**
 * Sources are the biggest blobs and only needed while jobs wait for them: a day, kept alive
 * by the coordinator waiting on them, and put again if Redis lost it (a restart without data).
 */
const SOURCE_TTL_SECONDS = 24 * 3600;

/**
 * The farm session (Redis, workers) of one `kfarm build`, opened on the first job the result
 * store does not hold: a warm run starts no Redis at all (and loads no farm-session.ts). Each
 * source the jobs need goes up once, when the session is open.
 */
export function farmOnDemand(deps: BuildDeps, concurrency: number) {
  let opening: Promise<FarmSession> | undefined;
  let uploads: readonly SourceArchive[] = [];
  const uploaded = new Set<string>();
  const session = async (): Promise<FarmSession> => {
    const s = await (opening ??= (async () => {
      const { openFarmSession } = await import('./farm-session.js');
      return openFarmSession({ ...deps, concurrency });
    })());
    for (const source of uploads.filter((u) => !uploaded.has(u.sha256))) {
      const blob = await s.blobs.put(source.tar, SOURCE_TTL_SECONDS);
      uploaded.add(source.sha256);
      deps.logger.info({ source: source.dir, sha256: blob.sha256, files: source.files }, 'source uploaded');
    }
    return s;
  };
  return {
    session,
    /** the sources the jobs will need, once planned: each goes up once the session is open */
    upload(sources: readonly SourceArchive[]): void {
      uploads = sources;
    },
    /** for runJobs: makes sure each source blob is in Redis for a while yet */
    keepSources(sources: readonly SourceArchive[]): () => Promise<void> {
      return async () => {
        const s = await session();
        for (const source of sources) {
          if (!(await s.blobs.touch(source.sha256, SOURCE_TTL_SECONDS))) await s.blobs.put(source.tar, SOURCE_TTL_SECONDS);
        }
      };
    },
    /** closes the session if it was opened (a failed opening is already reported) */
    async close(): Promise<void> {
      const opened = await opening?.catch(() => undefined);
      await opened?.close();
    },
  };
}

export type FarmOnDemand = ReturnType<typeof farmOnDemand>;
