import type { Logger } from 'pino';
import { describeError } from '../../errors/kfarm-error.js';
import type { BuildRow, FarmDb, ResultRow } from '../farm-db.js';
import type { WebhookEvent } from '../notify/webhook-event.js';
import { buildFindings } from './build-findings.js';

export interface AfterBuildDeps {
  db: FarmDb;
  /** the webhook notifier's notify (queues and returns at once) */
  notify: (event: WebhookEvent) => void;
  logger: Logger;
  /** where a build's report is on the farm's API (/api/v1/builds/<id>/report) */
  reportPath: (buildId: string) => string;
}

/** the API path of a build's report, for events whose receiver knows the farm's address */
export const apiReportPath = (buildId: string): string => `/api/v1/builds/${encodeURIComponent(buildId)}/report`;

/**
 * BuildRunner's onFinished for `kfarm serve`: reads what the build recorded and the history
 * before it, and notifies what changed (build-findings.ts). Only builds of registered modules
 * speak: a one-off source (`kfarm build --farm` from a CI branch) is someone's experiment, not
 * the farm's record. Never throws into the runner: a database read failing is logged, and the
 * build it reports on stays done.
 */
export function afterBuild(deps: AfterBuildDeps): (build: BuildRow) => void {
  return (build) => {
    const log = deps.logger.child({ build: build.id, module: build.module });
    try {
      if (!build.module || build.state !== 'done') return;
      const rows = deps.db.results.forBuild(build.id);
      if (rows.length === 0) return;
      const modules = [...new Set(rows.map((r) => r.module))];
      // the history of every module the build reported (a registered module is one, but the rows say)
      const before: ResultRow[] = modules.flatMap((m) => deps.db.results.history(m)).filter((r) => r.buildId !== build.id && r.at <= (rows[0]?.at ?? r.at));
      const events = buildFindings({ before, rows, reportPath: deps.reportPath });
      for (const event of events) deps.notify(event);
      if (events.length > 0) log.info({ events: events.map((e) => e.type) }, `build findings: ${events.length} notified`);
    } catch (err) {
      log.error({ err: describeError(err) }, 'could not tell what the build changed: no notification sent for it');
    }
  };
}
