import { compareDebianVersions } from '../../archive/debian-version.js';
import type { ResultRow } from '../farm-db.js';
import { compareSeriesKernels, kernelLine } from './kernel-order.js';

/**
 * Pure: what broke where, and since when. From every result of one module (FarmDb's
 * results.history, any order) to one window per kernel series and check: the last kernel that
 * built (or loaded) and the first that failed after it.
 *
 * How the rows are read:
 * - A series is (module, release, arch, flavour, line): `line` is the upstream line (6.1, 6.12)
 *   because one flavour of a release can carry two kernel lines (see kernel-order.ts).
 * - A new module version restarts the judgement: in each series only the results of the newest
 *   module version that has any there count (a fix in 1.3 is not blamed on 1.2's failures, nor
 *   1.3's failure excused by 1.2's builds). Older versions' kernels are left out, not mixed in.
 * - A kernel built several times (a rebuild, a resumed build) is judged by its newest result.
 * - Build check: built is good, failed is bad, excluded (BUILD_EXCLUSIVE) is neither: the kernel
 *   is skipped, as if it were not in the series. Load check: loaded is good, load-failed is bad,
 *   not-verified or no check is neither.
 */

export type Check = 'build' | 'load';
export type WindowState = 'ok' | 'broken' | 'fixed' | 'never-built';

export interface SeriesKey {
  module: string;
  release: string;
  /** kfarm's arch name, as the results give it (x86_64, aarch64) */
  arch: string;
  flavour: string;
  /** the upstream kernel line (6.1, 6.12) */
  line: string;
}

export interface CheckWindow {
  check: Check;
  /**
   * ok: every judged kernel good; broken: the newest is bad and an earlier one was good (an open
   * regression); fixed: the newest is good and an earlier one was bad; never-built: every judged
   * kernel bad (for the load check: never loaded)
   */
  state: WindowState;
  /** broken: the newest good kernel before the failures; ok and fixed: the newest kernel */
  lastGood?: string;
  /** broken: the first bad kernel after lastGood; never-built: the oldest kernel; fixed: the first kernel of the last bad run */
  firstBad?: string;
  /** fixed: the last bad kernel before the fix */
  lastBad?: string;
  /** fixed: the first good kernel after the last bad run */
  fixedIn?: string;
  oldest: string;
  newest: string;
  /** firstBad's first compiler (or load) error, as recorded */
  firstError?: string;
  /** firstBad's reason, as recorded */
  reason?: string;
  /** the build that recorded firstBad's verdict */
  buildId?: string;
  /**
   * ISO time the window's state began: broken and never-built, when firstBad was first seen bad
   * (in its current run of bad results); fixed, when fixedIn was first seen good; ok, when the
   * oldest kernel was first seen good
   */
  since: string;
  /** how many kernels were judged for this check */
  kernels: number;
}

export interface SeriesWindows extends SeriesKey {
  /** the module version whose results decide this series */
  version: string;
  build?: CheckWindow;
  load?: CheckWindow;
  /** kernels whose newest result is excluded (BUILD_EXCLUSIVE): neither good nor bad */
  excluded: string[];
}

type Verdict = 'good' | 'bad';

const byTime = (a: ResultRow, b: ResultRow) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.buildId < b.buildId ? -1 : a.buildId > b.buildId ? 1 : 0);

function verdictOf(row: ResultRow, check: Check): Verdict | undefined {
  if (check === 'build') return row.verdict === 'built' ? 'good' : row.verdict === 'failed' ? 'bad' : undefined;
  return row.load === 'loaded' ? 'good' : row.load === 'load-failed' ? 'bad' : undefined;
}

export interface Judged {
  kernel: string;
  verdict: Verdict;
  /** the newest result */
  row: ResultRow;
  /** when this kernel's current run of same-verdict results began */
  since: string;
}

/** The kernel's verdict for a check: its newest result decides; undefined when that result says nothing for the check. */
function judge(kernel: string, rows: readonly ResultRow[], check: Check): Judged | undefined {
  const newest = rows[rows.length - 1];
  if (!newest) return undefined;
  const verdict = verdictOf(newest, check);
  if (!verdict) return undefined;
  let since = newest.at;
  for (let i = rows.length - 2; i >= 0; i--) {
    const row = rows[i];
    if (!row || verdictOf(row, check) !== verdict) break;
    since = row.at;
  }
  return { kernel, verdict, row: newest, since };
}

/** Pure: the window of one check over kernels in series order (oldest first), or undefined when none was judged. */
export function checkWindow(check: Check, judged: readonly Judged[]): CheckWindow | undefined {
  const first = judged[0];
  const last = judged[judged.length - 1];
  if (!first || !last) return undefined;
  const base = { check, oldest: first.kernel, newest: last.kernel, kernels: judged.length };
  const blame = (bad: Judged) => ({
    firstBad: bad.kernel,
    ...(bad.row.firstError !== undefined ? { firstError: bad.row.firstError } : {}),
    ...(bad.row.reason !== undefined ? { reason: bad.row.reason } : {}),
    buildId: bad.row.buildId,
  });
  if (last.verdict === 'bad') {
    // the trailing run of bad kernels; the kernel before it (if any) is the last good one
    let start = judged.length - 1;
    while (start > 0 && judged[start - 1]?.verdict === 'bad') start--;
    const firstBad = judged[start] as Judged;
    const lastGood = judged[start - 1];
    if (!lastGood) return { ...base, state: 'never-built', ...blame(firstBad), since: firstBad.since };
    return { ...base, state: 'broken', lastGood: lastGood.kernel, ...blame(firstBad), since: firstBad.since };
  }
  let badEnd = judged.length - 1;
  while (badEnd >= 0 && judged[badEnd]?.verdict === 'good') badEnd--;
  if (badEnd < 0) return { ...base, state: 'ok', lastGood: last.kernel, since: first.since };
  let badStart = badEnd;
  while (badStart > 0 && judged[badStart - 1]?.verdict === 'bad') badStart--;
  const fixedIn = judged[badEnd + 1] as Judged;
  return {
    ...base,
    state: 'fixed',
    lastGood: last.kernel,
    ...blame(judged[badStart] as Judged),
    lastBad: (judged[badEnd] as Judged).kernel,
    fixedIn: fixedIn.kernel,
    since: fixedIn.since,
  };
}

const seriesId = (k: SeriesKey) => [k.module, k.release, k.arch, k.flavour, k.line].join('\0');

/** Pure: one entry per series of the rows (sorted by release, arch, flavour, line), each with its build and load windows. */
export function seriesWindows(rows: readonly ResultRow[]): SeriesWindows[] {
  const series = new Map<string, { key: SeriesKey; rows: ResultRow[] }>();
  for (const row of rows) {
    const key: SeriesKey = { module: row.module, release: row.release, arch: row.arch, flavour: row.flavour, line: kernelLine(row.kernel, row.flavour) };
    const id = seriesId(key);
    const entry = series.get(id) ?? { key, rows: [] };
    entry.rows.push(row);
    series.set(id, entry);
  }
  const out: SeriesWindows[] = [];
  for (const { key, rows: all } of series.values()) {
    const version = [...new Set(all.map((r) => r.version))].reduce((a, b) => (compareDebianVersions(b, a) > 0 ? b : a));
    const byKernel = new Map<string, ResultRow[]>();
    for (const row of all) {
      if (row.version !== version) continue;
      const kernelRows = byKernel.get(row.kernel);
      if (kernelRows) kernelRows.push(row);
      else byKernel.set(row.kernel, [row]);
    }
    const kernels = [...byKernel.keys()].sort((a, b) => compareSeriesKernels(a, b, key.flavour));
    const history = kernels.map((k) => ({ kernel: k, rows: (byKernel.get(k) ?? []).sort(byTime) }));
    const judgedFor = (check: Check) => history.map((h) => judge(h.kernel, h.rows, check)).filter((j): j is Judged => j !== undefined);
    const build = checkWindow('build', judgedFor('build'));
    const load = checkWindow('load', judgedFor('load'));
    const excluded = history.filter((h) => h.rows[h.rows.length - 1]?.verdict === 'excluded').map((h) => h.kernel);
    out.push({ ...key, version, ...(build ? { build } : {}), ...(load ? { load } : {}), excluded });
  }
  return out.sort(
    (a, b) =>
      a.module.localeCompare(b.module) ||
      a.release.localeCompare(b.release) ||
      a.arch.localeCompare(b.arch) ||
      a.flavour.localeCompare(b.flavour) ||
      compareDebianVersions(a.line, b.line),
  );
}

export interface OpenRegression {
  series: SeriesWindows;
  window: CheckWindow;
}

/** Pure: the open regressions (the newest kernel bad, an earlier one good) of both checks, the most recent first. */
export function openRegressions(windows: readonly SeriesWindows[]): OpenRegression[] {
  const open: OpenRegression[] = [];
  for (const series of windows) {
    for (const window of [series.build, series.load]) if (window?.state === 'broken') open.push({ series, window });
  }
  return open.sort((a, b) => (a.window.since > b.window.since ? -1 : a.window.since < b.window.since ? 1 : 0));
}
