import type { FarmDb } from '../farm-db.js';
import type { HeadersChangelog } from '../regressions/headers-changelog.js';
import { openRegressions, seriesWindows, type OpenRegression } from '../regressions/series-windows.js';
import { buildDashboardModel } from './build-dashboard-model.js';
import type { DashboardLive, DashboardModel } from './dashboard-model.js';
import { dashboardRegression } from './dashboard-regression.js';

/**
 * The dashboard's model as kfarm serve answers `GET /api/v1/dashboard`: the registered
 * modules, the kernels seen, every module's results and its open regressions, read from the
 * farm's database at the moment of the request. The queue's live state and the changelogs
 * come from the caller: the queue is the queue module's to read, and a changelog is read from a
 * kernel image by a container (headers-changelog.ts), too slow for a 2 s poll, so the server
 * reads each once and hands its cache in.
 */
export interface DashboardSources {
  /** ISO time of the request */
  now: string;
  live: DashboardLive;
  /** the changelog read for an open regression, if the server has it (default: none) */
  changelog?: (open: OpenRegression) => HeadersChangelog | undefined;
}

export function readDashboardModel(db: FarmDb, sources: DashboardSources): DashboardModel {
  const modules = db.modules.list();
  const histories = modules.map((m) => db.results.history(m.name));
  const results = histories.flat();
  const regressions = histories.flatMap((rows) => openRegressions(seriesWindows(rows))).map((open) => dashboardRegression(open, sources.changelog?.(open)));
  return buildDashboardModel({ generatedAt: sources.now, modules, kernels: db.kernels.list(), results, regressions, live: sources.live });
}
