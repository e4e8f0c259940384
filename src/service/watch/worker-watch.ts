import type { Logger } from 'pino';
import { describeError } from '../../errors/kfarm-error.js';
import { closeConnection, connect, type RedisTarget } from '../../queue/redis-connection.js';
import { listWorkerAdverts, type WorkerAdvert } from '../../queue/worker-registry.js';

/** Pure: the workers of `before` no longer advertised in `after` (by worker id). */
export function goneWorkers(before: readonly WorkerAdvert[], after: readonly WorkerAdvert[]): WorkerAdvert[] {
  const live = new Set(after.map((a) => a.worker));
  return before.filter((a) => !live.has(a.worker));
}

export interface WorkerWatch {
  close(): Promise<void>;
}

/**
 * The farm's workers, as their adverts in Redis say (queue/worker-registry.ts: each expires a
 * minute after its worker stops renewing it): a worker that was there and is gone is a farm
 * fault, told once. Only with REDIS_URL: a local build's in-process worker comes and goes with
 * each build, which is no fault. A Redis that does not answer is logged and looked at again.
 */
export function startWorkerWatch(options: { target: RedisTarget; queueName: string; logger: Logger; everyMs?: number; onGone: (gone: WorkerAdvert) => void }): WorkerWatch {
  const redis = connect(options.target);
  let known: WorkerAdvert[] | undefined;
  let running: Promise<void> | undefined;
  const look = async () => {
    try {
      const now = await listWorkerAdverts(redis, options.queueName);
      if (known) for (const gone of goneWorkers(known, now)) options.onGone(gone);
      known = now;
    } catch (err) {
      options.logger.warn({ err: describeError(err) }, 'could not read the worker adverts; looking again later');
    }
  };
  running = look();
  const timer = setInterval(() => {
    running = (running ?? Promise.resolve()).then(look);
  }, options.everyMs ?? 30_000);
  return {
    async close() {
      clearInterval(timer);
      await running;
      closeConnection(redis);
    },
  };
}
