import type { Database } from 'better-sqlite3';
import type { FarmDb, ResultRow } from '../farm-db.js';
import type { Guard } from './sqlite-failure.js';

interface ResultRecord {
  build_id: string;
  module: string;
  version: string;
  kernel: string;
  release: string;
  arch: string;
  flavour: string;
  verdict: ResultRow['verdict'];
  reason: string | null;
  first_error: string | null;
  load: ResultRow['load'] | null;
  at: string;
}

const toRow = (r: ResultRecord): ResultRow => ({
  buildId: r.build_id,
  module: r.module,
  version: r.version,
  kernel: r.kernel,
  release: r.release,
  arch: r.arch,
  flavour: r.flavour,
  verdict: r.verdict,
  ...(r.reason === null ? {} : { reason: r.reason }),
  ...(r.first_error === null ? {} : { firstError: r.first_error }),
  ...(r.load === null ? {} : { load: r.load }),
  at: r.at,
});

export function resultsTable(db: Database, guard: Guard): FarmDb['results'] {
  // a cell recorded again (a resumed build) replaces its row: one row per (build, module, kernel)
  const upsert = db.prepare(
    `INSERT INTO results (build_id, module, version, kernel, release, arch, flavour, verdict, reason, first_error, load, at)
     VALUES (@build_id, @module, @version, @kernel, @release, @arch, @flavour, @verdict, @reason, @first_error, @load, @at)
     ON CONFLICT (build_id, module, kernel) DO UPDATE SET version = excluded.version, release = excluded.release, arch = excluded.arch,
       flavour = excluded.flavour, verdict = excluded.verdict, reason = excluded.reason, first_error = excluded.first_error, load = excluded.load, at = excluded.at`,
  );
  const ofBuild = db.prepare<[string], ResultRecord>('SELECT * FROM results WHERE build_id = ? ORDER BY module, kernel');
  const ofModule = db.prepare<[string], ResultRecord>('SELECT * FROM results WHERE module = ? ORDER BY at, build_id, kernel');
  const recordAll = db.transaction((rows: readonly ResultRow[]) => {
    for (const r of rows)
      upsert.run({
        build_id: r.buildId,
        module: r.module,
        version: r.version,
        kernel: r.kernel,
        release: r.release,
        arch: r.arch,
        flavour: r.flavour,
        verdict: r.verdict,
        reason: r.reason ?? null,
        first_error: r.firstError ?? null,
        load: r.load ?? null,
        at: r.at,
      });
  });
  return {
    record: (rows) => guard(`recording ${rows.length} result(s)${rows[0] ? ` of build ${rows[0].buildId}` : ''}`, () => recordAll(rows)),
    forBuild: (buildId) => guard(`reading the results of build ${buildId}`, () => ofBuild.all(buildId).map(toRow)),
    history: (module) => guard(`reading the results of module ${module}`, () => ofModule.all(module).map(toRow)),
  };
}
