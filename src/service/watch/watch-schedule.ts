import { Queue, Worker } from 'bullmq';
import type { Logger } from 'pino';
import { describeError } from '../../errors/kfarm-error.js';
import { closeConnection, connect, type RedisTarget } from '../../queue/redis-connection.js';

export interface WatchScheduleOptions {
  target: RedisTarget;
  /** the farm's queue name; the watch's is `<queueName>-watch` */
  queueName: string;
  /** a fixed interval, or a cron pattern (BullMQ's job scheduler takes either) */
  every?: number;
  cron?: string;
  logger: Logger;
  run: () => Promise<unknown>;
}

export interface WatchSchedule {
  /** a run now (POST /api/v1/sync): queued unless one is already waiting */
  trigger(): Promise<{ started: boolean; reason?: string }>;
  close(): Promise<void>;
}

export const watchQueueName = (queueName: string) => `${queueName}-watch`;

/**
 * The watch as a BullMQ job scheduler: one repeatable job, so several services on one Redis (or
 * a restarted one) keep one schedule, and a run is a job that one worker takes at a time. A run
 * that throws (the archive unreachable, its signature bad) is a failed job, logged; the
 * scheduler's next run tries again.
 */
export async function startWatchSchedule(options: WatchScheduleOptions): Promise<WatchSchedule> {
  const name = watchQueueName(options.queueName);
  const queueConnection = connect(options.target);
  const workerConnection = connect(options.target);
  const queue = new Queue(name, { connection: queueConnection });
  const repeat = options.cron ? { pattern: options.cron } : { every: options.every ?? 3_600_000 };
  await queue.upsertJobScheduler('archive-watch', repeat, { name: 'watch', opts: { removeOnComplete: 50, removeOnFail: 50 } });
  const worker = new Worker(
    name,
    async () => {
      await options.run();
    },
    { connection: workerConnection, concurrency: 1, lockDuration: 600_000 },
  );
  worker.on('failed', (_job, err) => options.logger.error({ err: describeError(err) }, 'watch run failed; the next scheduled run tries again'));
  options.logger.info({ ...repeat }, 'watching the archive');
  return {
    async trigger() {
      const waiting = await queue.getJobs(['waiting', 'prioritized'], 0, 10);
      if (waiting.some((j) => j.name === 'watch-now')) return { started: false, reason: 'a run asked for earlier is still waiting' };
      await queue.add('watch-now', {}, { removeOnComplete: 50, removeOnFail: 50 });
      return { started: true };
    },
    async close() {
      await worker.close();
      await queue.close();
      closeConnection(workerConnection);
      closeConnection(queueConnection);
    },
  };
}
