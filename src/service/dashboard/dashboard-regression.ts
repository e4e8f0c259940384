import { debianArchOf } from '../../report/release-arch.js';
import type { HeadersChangelog } from '../regressions/headers-changelog.js';
import type { OpenRegression } from '../regressions/series-windows.js';
import { windowSentence } from '../regressions/window-sentence.js';
import { buildLinks, type DashboardRegression } from './dashboard-model.js';

/**
 * Pure: one open regression of the regression view (series-windows.ts) and the changelog read
 * for it (headers-changelog.ts, when the server read one) as the dashboard shows it.
 */
export function dashboardRegression(open: OpenRegression, changelog?: HeadersChangelog): DashboardRegression {
  const { series, window } = open;
  const firstBad = window.firstBad ?? window.newest;
  const cut =
    changelog && (changelog.omittedEntries > 0 || changelog.omittedLines > 0)
      ? `${changelog.omittedEntries} more entries and ${changelog.omittedLines} lines not shown`
      : undefined;
  const note = changelog ? [changelog.note, cut].filter(Boolean).join('; ') : 'the changelog between them was not read';
  return {
    module: series.module,
    kind: window.check,
    series: { release: series.release, arch: debianArchOf(series.arch), flavour: series.flavour, line: series.line },
    lastGood: window.lastGood ?? '',
    firstBad,
    ...(window.firstError !== undefined ? { firstError: window.firstError } : {}),
    sentence: windowSentence(window),
    since: window.since,
    changelog: (changelog?.entries ?? []).map((e) => ({ version: e.version, lines: e.body })),
    ...(note ? { changelogNote: note } : {}),
    ...(window.buildId !== undefined ? { buildId: window.buildId, links: buildLinks(window.buildId, series.module, firstBad, window.check === 'load') } : {}),
  };
}
