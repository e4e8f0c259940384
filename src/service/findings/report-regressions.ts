import type { RegressionChangelog, RegressionReport } from '../../report/report.js';
import { cleanText, TEXT_LIMITS } from '../../util/clean-text.js';
import type { ResultRow } from '../farm-db.js';
import { DEFAULT_READ_LIMITS, changelogRequest, type ChangelogReadLimits, type ChangelogRequest, type HeadersChangelog } from '../regressions/headers-changelog.js';
import { seriesWindows, type CheckWindow, type SeriesWindows } from '../regressions/series-windows.js';
import { windowSentence } from '../regressions/window-sentence.js';

/**
 * A farm build's report says what broke where, and since when (issue 23): for each kernel series
 * the build touched, its build and load windows over the farm's history, when they are not ok.
 * Judged per module version: only the history of the version this build built counts, so a
 * report of 1.1 never carries 1.2's regressions, nor 1.0's failures that 1.1 fixed (as
 * series-windows.ts judges a newer version afresh).
 */

/** what a window of the report is about */
export interface ReportWindow {
  series: SeriesWindows;
  window: CheckWindow;
}

const seriesId = (s: Pick<SeriesWindows, 'module' | 'release' | 'arch' | 'flavour' | 'line'>) => [s.module, s.release, s.arch, s.flavour, s.line].join('\0');
const STATE_ORDER: Record<CheckWindow['state'], number> = { broken: 0, 'never-built': 1, fixed: 2, ok: 3 };

/**
 * Pure: the windows that are not ok of the series this build's rows fall in, from the history
 * recorded before the build (`before`, any module or version: filtered here) and the build's own
 * rows; open regressions first (the most recent first), then never-built, then fixed, each in
 * series order.
 */
export function reportWindows(before: readonly ResultRow[], rows: readonly ResultRow[]): ReportWindow[] {
  if (rows.length === 0) return [];
  const buildIds = new Set(rows.map((r) => r.buildId));
  const versions = new Set(rows.map((r) => `${r.module}\0${r.version}`));
  // a resumed build may have recorded some rows already: its own count once, as this build's
  const history = before.filter((r) => !buildIds.has(r.buildId) && versions.has(`${r.module}\0${r.version}`));
  const touched = new Set(seriesWindows(rows).map(seriesId));
  const out: ReportWindow[] = [];
  for (const series of seriesWindows([...history, ...rows])) {
    if (!touched.has(seriesId(series))) continue;
    for (const window of [series.build, series.load]) if (window && window.state !== 'ok') out.push({ series, window });
  }
  // stable sort: series order within a state
  return out.sort(
    (a, b) =>
      STATE_ORDER[a.window.state] - STATE_ORDER[b.window.state] ||
      (a.window.state === 'broken' ? (a.window.since > b.window.since ? -1 : a.window.since < b.window.since ? 1 : 0) : 0),
  );
}

/** Pure: one window as the report carries it, with its changelog when one was read (or why not). */
export function regressionEntry({ series, window }: ReportWindow, changelog?: RegressionChangelog): RegressionReport {
  return {
    module: series.module,
    version: series.version,
    release: series.release,
    arch: series.arch,
    flavour: series.flavour,
    line: series.line,
    check: window.check,
    state: window.state as RegressionReport['state'],
    sentence: windowSentence(window),
    ...(window.lastGood !== undefined ? { lastGood: window.lastGood } : {}),
    ...(window.firstBad !== undefined ? { firstBad: window.firstBad } : {}),
    ...(window.lastBad !== undefined ? { lastBad: window.lastBad } : {}),
    ...(window.fixedIn !== undefined ? { fixedIn: window.fixedIn } : {}),
    // recorded from reports (cleaned there); cleaned again since the history may be older than that
    ...(window.firstError !== undefined ? { firstError: cleanText(window.firstError, TEXT_LIMITS.firstError) } : {}),
    ...(window.reason !== undefined ? { reason: cleanText(window.reason, 256) } : {}),
    ...(window.buildId !== undefined ? { buildId: window.buildId } : {}),
    since: window.since,
    ...(changelog ? { changelog } : {}),
  };
}

/** a report carries less of a changelog than the API: the span's newest entries, enough to see what changed */
export const REPORT_CHANGELOG_LIMITS: ChangelogReadLimits = { ...DEFAULT_READ_LIMITS, entries: 20, lines: 1000, timeoutMs: 60_000 };
/** each read is a container: a build that broke many series reads this many, the API gives the rest */
export const MAX_CHANGELOG_READS = 8;

export interface ReportRegressionsDeps {
  /** headersChangelog on the farm's engine (throws when the engine cannot be asked) */
  readChangelog: (request: ChangelogRequest) => Promise<HeadersChangelog>;
  /** a kernel's headers version, when the farm's kernel table knows it */
  headersVersion?: (kernel: string) => string | undefined;
  /** reads at most this many changelogs (default MAX_CHANGELOG_READS) */
  maxReads?: number;
}

/**
 * The report's regressions: the windows (reportWindows) with the Debian changelog of each broken
 * or never-built one, read by `readChangelog`. A changelog that cannot be read (the engine away,
 * the image pruned) is said in its note and never fails the build; the same span is read once.
 */
export async function reportRegressions(before: readonly ResultRow[], rows: readonly ResultRow[], deps: ReportRegressionsDeps): Promise<RegressionReport[]> {
  const maxReads = deps.maxReads ?? MAX_CHANGELOG_READS;
  const read = new Map<string, Promise<RegressionChangelog>>();
  const out: RegressionReport[] = [];
  for (const w of reportWindows(before, rows)) {
    const version = (kernel: string | undefined) => (kernel ? deps.headersVersion?.(kernel) : undefined);
    const goodVersion = version(w.window.state === 'broken' ? w.window.lastGood : undefined);
    const badVersion = version(w.window.firstBad);
    const versions = goodVersion || badVersion ? { ...(goodVersion ? { lastGood: goodVersion } : {}), ...(badVersion ? { firstBad: badVersion } : {}) } : undefined;
    const request = changelogRequest(w.series, w.window, versions);
    if (!request) {
      out.push(regressionEntry(w));
      continue;
    }
    const key = JSON.stringify([request.release, request.flavour, request.lastGood, request.firstBad]);
    let changelog = read.get(key);
    if (!changelog) {
      changelog =
        read.size < maxReads
          ? deps.readChangelog(request).then(
              (c): RegressionChangelog => c,
              (err: unknown) => unread(request, `could not be read: ${(err as Error).message}`),
            )
          : Promise.resolve(unread(request, `not read: a build reads at most ${maxReads} changelogs (GET /api/v1/modules/${w.series.module}/regressions/changelog gives it)`));
      read.set(key, changelog);
    }
    out.push(regressionEntry(w, await changelog));
  }
  return out;
}

function unread(request: ChangelogRequest, why: string): RegressionChangelog {
  return {
    ...(request.lastGood ? { lastGood: { kernel: request.lastGood, ...(request.versions?.lastGood ? { version: request.versions.lastGood } : {}) } } : {}),
    firstBad: { kernel: request.firstBad, ...(request.versions?.firstBad ? { version: request.versions.firstBad } : {}) },
    entries: [],
    omittedEntries: 0,
    omittedLines: 0,
    complete: false,
    note: cleanText(`the changelog between them ${why}`, TEXT_LIMITS.message),
  };
}
