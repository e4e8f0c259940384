import type { Database } from 'better-sqlite3';
import type { FarmDb, KernelSeenRow } from '../farm-db.js';
import type { Guard } from './sqlite-failure.js';

interface KernelRecord {
  release: string;
  arch: string;
  kernel: string;
  flavour: string;
  version: string;
  first_seen: string;
  last_seen: string;
  gone_since: string | null;
  pruned_at: string | null;
}

const toRow = (r: KernelRecord): KernelSeenRow => ({
  kernel: r.kernel,
  release: r.release,
  arch: r.arch,
  flavour: r.flavour,
  version: r.version,
  firstSeen: r.first_seen,
  lastSeen: r.last_seen,
  ...(r.gone_since === null ? {} : { goneSince: r.gone_since }),
  ...(r.pruned_at === null || r.pruned_at === undefined ? {} : { prunedAt: r.pruned_at }),
});

type Offered = Parameters<FarmDb['kernels']['observe']>[0][number];

export function kernelsTable(db: Database, guard: Guard): FarmDb['kernels'] {
  const one = db.prepare<[string, string, string], KernelRecord>('SELECT * FROM kernels WHERE release = ? AND arch = ? AND kernel = ?');
  const all = db.prepare<[], KernelRecord>('SELECT * FROM kernels ORDER BY release, arch, kernel');
  const stillHere = db.prepare<[string, string], KernelRecord>('SELECT * FROM kernels WHERE release = ? AND arch = ? AND gone_since IS NULL');
  const insert = db.prepare('INSERT INTO kernels (release, arch, kernel, flavour, version, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?)');
  // seen again: a kernel that had gone and came back is no longer gone, nor pruned (the watch may sync it again)
  const seen = db.prepare('UPDATE kernels SET flavour = ?, version = ?, last_seen = ?, gone_since = NULL, pruned_at = NULL WHERE release = ? AND arch = ? AND kernel = ?');
  const goneAt = db.prepare('UPDATE kernels SET gone_since = ? WHERE release = ? AND arch = ? AND kernel = ?');
  // only a gone kernel is pruned: one the archive offers again in between stays as it is
  const prunedAt = db.prepare('UPDATE kernels SET pruned_at = ? WHERE release = ? AND arch = ? AND kernel = ? AND gone_since IS NOT NULL');
  const markPruned = db.transaction((kernels: ReadonlyArray<Pick<KernelSeenRow, 'release' | 'arch' | 'kernel'>>, at: string) => {
    for (const k of kernels) prunedAt.run(at, k.release, k.arch, k.kernel);
  });

  const observe = db.transaction((offered: readonly Offered[], at: string) => {
    const added: KernelSeenRow[] = [];
    const gone: KernelSeenRow[] = [];
    const looked = new Map<string, { release: string; arch: string; kernels: Set<string> }>();
    for (const k of offered) {
      const key = JSON.stringify([k.release, k.arch]);
      const series = looked.get(key) ?? { release: k.release, arch: k.arch, kernels: new Set<string>() };
      series.kernels.add(k.kernel);
      looked.set(key, series);
      if (one.get(k.release, k.arch, k.kernel)) seen.run(k.flavour, k.version, at, k.release, k.arch, k.kernel);
      else {
        insert.run(k.release, k.arch, k.kernel, k.flavour, k.version, at, at);
        added.push(toRow(one.get(k.release, k.arch, k.kernel) as KernelRecord));
      }
    }
    // Gone only within a (release, arch) this look listed: a look that skipped one, or could not
    // read its index, says nothing about that one's kernels.
    for (const { release, arch, kernels } of looked.values())
      for (const r of stillHere.all(release, arch))
        if (!kernels.has(r.kernel)) {
          goneAt.run(at, release, arch, r.kernel);
          gone.push(toRow({ ...r, gone_since: at }));
        }
    return { added, gone };
  });
  return {
    observe: (offered, at) => guard('recording the kernels the archive offers', () => observe(offered, at)),
    list: () => guard('listing kernels', () => all.all().map(toRow)),
    markPruned: (kernels, at) => guard('recording pruned kernels', () => markPruned(kernels, at)),
  };
}
