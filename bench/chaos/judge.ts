import type { BuildReport, KernelReport } from '../../src/report/report.js';

/**
 * Pure: does a build that ran under chaos end as a quiet build of the same matrix did
 * (issue 26 §1)? Every cell (module, version, kernel) has exactly one row, each verdict is the
 * quiet run's (a fault is never blamed on the module), and, the builds being reproducible
 * (SOURCE_DATE_EPOCH), every module file and tarball has the quiet run's sha256.
 */

export interface CellDiff {
  cell: string;
  quiet: string;
  chaos: string;
}

export interface Judgement {
  cells: number;
  /** cells of the quiet run the chaos run has no row for */
  missing: string[];
  /** cells with more than one row in the chaos run */
  duplicated: string[];
  /** cells the chaos run has that the quiet run has not */
  extra: string[];
  verdicts: CellDiff[];
  artifacts: CellDiff[];
  ok: boolean;
}

const cellOf = (r: Pick<KernelReport, 'module' | 'version' | 'kernel' | 'arch'>, report: Pick<BuildReport, 'module' | 'version'>) =>
  `${r.module ?? report.module} ${r.version ?? report.version} ${r.kernel} ${r.arch}`;

/** what a row delivered, as one comparable string: each module file's sha256 and the tarball's */
const artifactsOf = (r: KernelReport) => [...r.modules.map((m) => `${m.file}=${m.sha256}`), ...(r.tarball ? [`tarball=${r.tarball.sha256}`] : [])].sort().join(' ');

function rowsByCell(reports: readonly BuildReport[]): Map<string, KernelReport[]> {
  const cells = new Map<string, KernelReport[]>();
  for (const report of reports) {
    for (const row of report.kernels) {
      const key = cellOf(row, report);
      cells.set(key, [...(cells.get(key) ?? []), row]);
    }
  }
  return cells;
}

/** `quiet` and `chaos`: the report.json of each module's build (one per module source, or one of several sources) */
export function judgeChaos(quiet: readonly BuildReport[], chaos: readonly BuildReport[]): Judgement {
  const q = rowsByCell(quiet);
  const c = rowsByCell(chaos);
  const judgement: Judgement = { cells: q.size, missing: [], duplicated: [], extra: [], verdicts: [], artifacts: [], ok: false };
  for (const [cell, rows] of q) {
    const quietRow = rows[0];
    const chaosRows = c.get(cell) ?? [];
    if (!quietRow) continue;
    if (chaosRows.length === 0) {
      judgement.missing.push(cell);
      continue;
    }
    if (chaosRows.length > 1) judgement.duplicated.push(cell);
    const row = chaosRows[0]!;
    const quietVerdict = `${quietRow.verdict}${quietRow.reason ? `/${quietRow.reason}` : ''}`;
    const chaosVerdict = `${row.verdict}${row.reason ? `/${row.reason}` : ''}`;
    if (quietVerdict !== chaosVerdict) judgement.verdicts.push({ cell, quiet: quietVerdict, chaos: chaosVerdict });
    else if (artifactsOf(quietRow) !== artifactsOf(row)) judgement.artifacts.push({ cell, quiet: artifactsOf(quietRow), chaos: artifactsOf(row) });
  }
  for (const cell of c.keys()) if (!q.has(cell)) judgement.extra.push(cell);
  for (const list of [judgement.missing, judgement.duplicated, judgement.extra]) list.sort();
  judgement.ok = [judgement.missing, judgement.duplicated, judgement.extra, judgement.verdicts, judgement.artifacts].every((l) => l.length === 0);
  return judgement;
}
