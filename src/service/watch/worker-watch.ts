import type { Logger } from 'pino';
import { describeError } from '../../errors/kfarm-error.js';
import { closeConnection, connect, type RedisTarget } from '../../queue/redis-connection.js';
import { listWorkerAdverts, type WorkerAdvert } from '../../queue/worker-registry.js';
import type { DashboardWorker } from '../dashboard/dashboard-model.js';
import { nextRoster } from '../dashboard/worker-roster.js';

/** Pure: the workers of `before` no longer advertised in `after` (by worker id). */
export function goneWorkers(before: readonly WorkerAdvert[], after: readonly WorkerAdvert[]): WorkerAdvert[] {
  const live = new Set(after.map((a) => a.worker));
  return before.filter((a) => !live.has(a.worker));
}

export interface WorkerWatch {
  /** the farm's workers at the last look: live ones, then those gone in the last day (the dashboard, GET /api/v1/workers) */
  workers(): DashboardWorker[];
  close(): Promise<void>;
}

/**
 * The farm's workers, as their adverts in Redis say (queue/worker-registry.ts: each expires a
 * minute after its worker stops renewing it, and a worker says it again each time a build
 * starts or ends there): looked at every few seconds for the dashboard's live list, and a worker
 * that was there and is gone is a farm fault, told once (onGone). Only with REDIS_URL: a local
 * build's in-process worker comes and goes with each build, which is no fault. A Redis that
 * does not answer is logged and looked at again; the list stays as it was last seen.
 */
export function startWorkerWatch(options: {
  target: RedisTarget;
  queueName: string;
  logger: Logger;
  /** how often to look; default 3 s (the dashboard polls every 2 s) */
  everyMs?: number;
  onGone?: (gone: WorkerAdvert) => void;
}): WorkerWatch {
  const redis = connect(options.target);
  let known: WorkerAdvert[] | undefined;
  let roster: DashboardWorker[] = [];
  let running: Promise<void> | undefined;
  let failing = false;
  const look = async () => {
    try {
      const now = await listWorkerAdverts(redis, options.queueName);
      if (known && options.onGone) for (const gone of goneWorkers(known, now)) options.onGone(gone);
      known = now;
      roster = nextRoster(roster, now, new Date().toISOString());
      failing = false;
    } catch (err) {
      // said once per outage, not every few seconds
      if (!failing) options.logger.warn({ err: describeError(err) }, 'could not read the worker adverts; looking again later');
      failing = true;
    }
  };
  running = look();
  const timer = setInterval(() => {
    running = (running ?? Promise.resolve()).then(look);
  }, options.everyMs ?? 3_000);
  return {
    workers: () => roster,
    async close() {
      clearInterval(timer);
      await running;
      closeConnection(redis);
    },
  };
}
