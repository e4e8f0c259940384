import type { Database, Statement } from 'better-sqlite3';
import { KfarmError } from '../../errors/kfarm-error.js';
import type { BuildRow, BuildState, BuildSummary, BuildTrigger, FarmDb } from '../farm-db.js';
import { newBuildId } from './ids.js';
import type { Guard } from './sqlite-failure.js';

interface BuildRecord {
  id: string;
  module: string | null;
  source_sha256: string;
  kernels: string;
  formats: string;
  state: BuildState;
  trigger: BuildTrigger;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  exit_code: number | null;
  summary: string | null;
  error: string | null;
  verify: 'load' | null;
}

const toRow = (r: BuildRecord): BuildRow => ({
  id: r.id,
  ...(r.module === null ? {} : { module: r.module }),
  sourceSha256: r.source_sha256,
  kernels: r.kernels,
  formats: JSON.parse(r.formats) as string[],
  state: r.state,
  trigger: r.trigger,
  createdAt: r.created_at,
  ...(r.started_at === null ? {} : { startedAt: r.started_at }),
  ...(r.finished_at === null ? {} : { finishedAt: r.finished_at }),
  ...(r.exit_code === null ? {} : { exitCode: r.exit_code }),
  ...(r.summary === null ? {} : { summary: JSON.parse(r.summary) as BuildSummary }),
  ...(r.error === null ? {} : { error: r.error }),
  ...(r.verify === null ? {} : { verify: r.verify }),
});

/** The columns update() may set, each with how its value is stored: a fixed list, so no column name ever comes from a caller. */
const PATCHABLE = {
  state: ['state', (v: unknown) => v],
  startedAt: ['started_at', (v: unknown) => v],
  finishedAt: ['finished_at', (v: unknown) => v],
  exitCode: ['exit_code', (v: unknown) => v],
  summary: ['summary', (v: unknown) => JSON.stringify(v)],
  error: ['error', (v: unknown) => v],
} as const;

export function buildsTable(db: Database, guard: Guard): FarmDb['builds'] {
  const insert = db.prepare(
    `INSERT INTO builds (id, module, source_sha256, kernels, formats, state, trigger, created_at, started_at, finished_at, exit_code, summary, error, verify)
     VALUES (@id, @module, @source_sha256, @kernels, @formats, @state, @trigger, @created_at, @started_at, @finished_at, @exit_code, @summary, @error, @verify)`,
  );
  const one = db.prepare<[string], BuildRecord>('SELECT * FROM builds WHERE id = ?');
  // rowid breaks ties of the same millisecond in insertion order
  const newest = db.prepare<[number], BuildRecord>('SELECT * FROM builds ORDER BY created_at DESC, rowid DESC LIMIT ?');
  const newestOf = db.prepare<[string, number], BuildRecord>('SELECT * FROM builds WHERE module = ? ORDER BY created_at DESC, rowid DESC LIMIT ?');
  const unfinished = db.prepare<[], BuildRecord>("SELECT * FROM builds WHERE state IN ('queued', 'running') ORDER BY created_at, rowid");
  const updates = Object.fromEntries(
    Object.entries(PATCHABLE).map(([key, [column]]) => [key, db.prepare<[unknown, string]>(`UPDATE builds SET ${column} = ? WHERE id = ?`)]),
  ) as Record<keyof typeof PATCHABLE, Statement<[unknown, string]>>;

  const get = (id: string) => {
    const r = one.get(id);
    return r && toRow(r);
  };
  return {
    create: (row) =>
      guard('recording a new build', () => {
        const id = newBuildId();
        insert.run({
          id,
          module: row.module ?? null,
          source_sha256: row.sourceSha256,
          kernels: row.kernels,
          formats: JSON.stringify(row.formats),
          state: 'queued',
          trigger: row.trigger,
          created_at: new Date().toISOString(),
          started_at: row.startedAt ?? null,
          finished_at: row.finishedAt ?? null,
          exit_code: row.exitCode ?? null,
          summary: row.summary === undefined ? null : JSON.stringify(row.summary),
          error: row.error ?? null,
          verify: row.verify ?? null,
        });
        return get(id) as BuildRow;
      }),
    get: (id) => guard(`reading build ${id}`, () => get(id)),
    list: (filter = {}) =>
      guard('listing builds', () => {
        const limit = filter.limit ?? -1; // SQLite: a negative LIMIT is none
        return (filter.module === undefined ? newest.all(limit) : newestOf.all(filter.module, limit)).map(toRow);
      }),
    update: (id, patch) =>
      guard(`updating build ${id}`, () =>
        db.transaction(() => {
          if (!one.get(id)) throw new KfarmError('BAD_OPTION', `no build ${id}`, { context: { build: id } });
          for (const key of Object.keys(PATCHABLE) as (keyof typeof PATCHABLE)[]) {
            const value = patch[key];
            if (value !== undefined) updates[key].run(PATCHABLE[key][1](value), id);
          }
          return get(id) as BuildRow;
        })(),
      ),
    unfinished: () => guard('listing unfinished builds', () => unfinished.all().map(toRow)),
  };
}
