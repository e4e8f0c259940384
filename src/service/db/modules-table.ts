import type { Database } from 'better-sqlite3';
import type { FarmDb, ModuleRow, ModuleSettings } from '../farm-db.js';
import type { Guard } from './sqlite-failure.js';

interface ModuleRecord {
  name: string;
  version: string;
  source_sha256: string;
  settings: string;
  created_at: string;
  updated_at: string;
}

const toRow = (r: ModuleRecord): ModuleRow => ({
  name: r.name,
  version: r.version,
  sourceSha256: r.source_sha256,
  settings: JSON.parse(r.settings) as ModuleSettings,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export function modulesTable(db: Database, guard: Guard): FarmDb['modules'] {
  const upsert = db.prepare(
    `INSERT INTO modules (name, version, source_sha256, settings, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET version = excluded.version, source_sha256 = excluded.source_sha256, settings = excluded.settings, updated_at = excluded.updated_at`,
  );
  const one = db.prepare<[string], ModuleRecord>('SELECT * FROM modules WHERE name = ?');
  const all = db.prepare<[], ModuleRecord>('SELECT * FROM modules ORDER BY name');
  const remove = db.prepare('DELETE FROM modules WHERE name = ?');
  const get = (name: string) => {
    const r = one.get(name);
    return r && toRow(r);
  };
  return {
    upsert: (row) =>
      guard(`registering module ${row.name}`, () =>
        db.transaction(() => {
          const now = new Date().toISOString();
          upsert.run(row.name, row.version, row.sourceSha256, JSON.stringify(row.settings), now, now);
          return get(row.name) as ModuleRow;
        })(),
      ),
    get: (name) => guard(`reading module ${name}`, () => get(name)),
    list: () => guard('listing modules', () => all.all().map(toRow)),
    remove: (name) => guard(`removing module ${name}`, () => remove.run(name).changes > 0),
  };
}
