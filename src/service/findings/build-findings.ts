import type { ResultRow } from '../farm-db.js';
import { stableEventId, webhookEvent, type WebhookEvent } from '../notify/webhook-event.js';
import { seriesWindows, type Check, type CheckWindow, type SeriesWindows } from '../regressions/series-windows.js';
import { windowSentence } from '../regressions/window-sentence.js';

/**
 * Pure: what the farm says about a finished build (issue 23, "Notifications"), from the module's
 * result history before the build and the build's own rows:
 * - `kernel-built`: a kernel this module version built for the first time;
 * - `new-failure`: a (module, version, kernel) that failed for the first time;
 * - `regression`: a series (see series-windows.ts) whose build or load window is broken now and
 *   was not before (ok, fixed, never-built, or not judged at all). A window that was already
 *   broken stays the same open regression even when this build narrows it (a kernel between
 *   lastGood and firstBad), so it is not told again.
 * A build that only repeats known results (the result store's cached cells, a rebuild) says
 * nothing. A module version is judged afresh (series-windows.ts): 1.1 building on a kernel 1.0
 * built on is news, 1.1 failing where 1.0 failed is a new failure.
 *
 * Event ids are named by what they are about (stableEventId), not by the build: the same
 * finding stated twice (a resumed build's onFinished, two farms' replicas) is delivered once.
 */

export interface FindingsInput {
  /** every result of the build's modules recorded before this build (FarmDb results.history, this build's rows left out) */
  before: readonly ResultRow[];
  /** this build's rows (FarmDb results.forBuild) */
  rows: readonly ResultRow[];
  /** where a build's report is on the farm's API */
  reportPath: (buildId: string) => string;
}

const cellKey = (r: Pick<ResultRow, 'module' | 'version' | 'kernel'>) => `${r.module}\0${r.version}\0${r.kernel}`;
const seriesKey = (s: Pick<SeriesWindows, 'module' | 'release' | 'arch' | 'flavour' | 'line'>) => [s.module, s.release, s.arch, s.flavour, s.line].join('\0');

function cellFields(row: ResultRow, reportPath: (buildId: string) => string) {
  return {
    module: row.module,
    version: row.version,
    kernel: row.kernel,
    release: row.release,
    arch: row.arch,
    flavour: row.flavour,
    verdict: row.verdict,
    ...(row.reason !== undefined ? { reason: row.reason } : {}),
    ...(row.firstError !== undefined ? { firstError: row.firstError } : {}),
    buildId: row.buildId,
    reportPath: reportPath(row.buildId),
  };
}

/** The newest row of a kernel of a series' deciding version (the row its window judged). */
function newestRow(rows: readonly ResultRow[], series: SeriesWindows, kernel: string, buildId?: string): ResultRow | undefined {
  let found: ResultRow | undefined;
  for (const r of rows) {
    if (r.kernel !== kernel || r.version !== series.version || r.module !== series.module || r.release !== series.release || r.arch !== series.arch) continue;
    if (buildId !== undefined && r.buildId !== buildId) continue;
    if (!found || r.at > found.at || (r.at === found.at && r.buildId > found.buildId)) found = r;
  }
  return found;
}

const windowOf = (s: SeriesWindows | undefined, check: Check): CheckWindow | undefined => (check === 'build' ? s?.build : s?.load);

export function buildFindings({ before, rows, reportPath }: FindingsInput): WebhookEvent[] {
  const events: WebhookEvent[] = [];
  const builtBefore = new Set(before.filter((r) => r.verdict === 'built').map(cellKey));
  const failedBefore = new Set(before.filter((r) => r.verdict === 'failed').map(cellKey));
  // one event per cell even if a build somehow holds a kernel twice
  const told = new Set<string>();
  for (const row of rows) {
    const key = `${row.verdict}\0${cellKey(row)}`;
    if (told.has(key)) continue;
    if (row.verdict === 'built' && !builtBefore.has(cellKey(row))) {
      told.add(key);
      events.push(
        webhookEvent({ type: 'kernel-built', ...cellFields(row, reportPath) }, { id: stableEventId('kernel-built', row.module, row.version, row.kernel), at: new Date(row.at) }),
      );
    } else if (row.verdict === 'failed' && !failedBefore.has(cellKey(row))) {
      told.add(key);
      events.push(
        webhookEvent({ type: 'new-failure', ...cellFields(row, reportPath) }, { id: stableEventId('new-failure', row.module, row.version, row.kernel), at: new Date(row.at) }),
      );
    }
  }

  if (rows.length === 0) return events;
  const all = [...before, ...rows];
  const was = new Map(seriesWindows(before).map((s) => [seriesKey(s), s]));
  for (const series of seriesWindows(all)) {
    const prior = was.get(seriesKey(series));
    for (const check of ['build', 'load'] as const) {
      const now = windowOf(series, check);
      if (now?.state !== 'broken' || !now.firstBad || !now.lastGood) continue;
      const then = prior?.version === series.version ? windowOf(prior, check) : undefined;
      if (then?.state === 'broken') continue;
      const bad = newestRow(all, series, now.firstBad, now.buildId);
      const good = newestRow(all, series, now.lastGood);
      if (!bad) continue;
      events.push(
        webhookEvent(
          {
            type: 'regression',
            ...cellFields(bad, reportPath),
            lastGood: { kernel: now.lastGood, ...(good ? { buildId: good.buildId } : {}) },
            firstBad: { kernel: now.firstBad, buildId: bad.buildId },
            // the window's error: for a load regression the load's, not the (successful) build's
            ...(now.firstError !== undefined ? { firstError: now.firstError } : {}),
            check,
            sentence: windowSentence(now),
          },
          {
            id: stableEventId('regression', check, series.module, series.version, series.release, series.arch, series.flavour, series.line, now.lastGood, now.firstBad),
            at: new Date(now.since),
          },
        ),
      );
    }
  }
  return events;
}
