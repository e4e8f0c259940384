import type { Logger } from 'pino';
import type { Env } from '../config/env.js';
import type { ContainerRuntime } from '../executor/runtime.js';
import { BLOB_PREFIX, BlobStore } from '../queue/blob-store.js';
import { BuildQueue } from '../queue/build-queue.js';
import { loadFarmKey } from '../queue/farm-key.js';
import { startPrivateRedis, type PrivateRedis } from '../queue/private-redis.js';
import { closeConnection, connectChecked, describeTarget, type RedisTarget } from '../queue/redis-connection.js';
import { VerifyQueue } from '../queue/verify-queue.js';
import { VERIFY_LANES } from '../job/verify-job.js';
import { startWorkerSet, type WorkerSet } from '../worker/worker-set.js';

/**
 * The queue side of a build: with REDIS_URL, an external Redis and external workers; without
 * it, a private redis-server and workers in this process. The same BullMQ path either way.
 */
export interface FarmSession {
  queue: BuildQueue;
  blobs: BlobStore;
  /** boots (with deps.verify), one run of them: close() takes its unfinished boots off the queues. In local mode this process's worker takes both lanes */
  verifyQueue?: VerifyQueue;
  distributed: boolean;
  where: string;
  /** Jobs this build no longer waits for: removed from the queue on close unless started. */
  abandon(jobIds: readonly string[]): void;
  close(): Promise<void>;
}

export { BLOB_PREFIX };

export async function openFarmSession(deps: {
  env: Env;
  runtime: ContainerRuntime;
  logger: Logger;
  /** builds at once in this process (local mode); 0: none */
  concurrency: number;
  signal: AbortSignal;
  /** a session for load verification: boots at once in the local worker */
  verify?: { concurrency: number };
}): Promise<FarmSession> {
  const { env, logger } = deps;
  let privateRedis: PrivateRedis | undefined;
  let target: RedisTarget;
  if (env.redisUrl) {
    target = { url: env.redisUrl };
    closeConnection(await connectChecked(target));
  } else {
    privateRedis = await startPrivateRedis(env.stateDir, logger);
    target = privateRedis.target;
  }
  // After Redis answered: "cannot reach Redis" is the more basic news.
  const key = await loadFarmKey({ keyFile: env.farmKeyFile, distributed: Boolean(env.redisUrl), stateDir: env.stateDir, logger }).catch(async (err: unknown) => {
    await privateRedis?.stop();
    throw err;
  });
  const queue = new BuildQueue(target, env.queueName, key);
  let workers: WorkerSet | undefined; // only in local mode: with REDIS_URL the farm's workers build
  const verifyQueue = deps.verify ? new VerifyQueue(target, env.queueName, key) : undefined;
  try {
    await queue.ready();
    await verifyQueue?.ready();
    const blobs = new BlobStore(queue.redis, BLOB_PREFIX);
    if (!env.redisUrl) {
      // this process is the farm's only host: it takes every lane (a KVM that cannot boot sends the boot to TCG)
      workers = await startWorkerSet({
        target,
        queueName: env.queueName,
        key,
        runtime: deps.runtime,
        logger,
        jobLogger: logger.child({ worker: 'in-process' }),
        hostname: env.hostname,
        stateDir: env.stateDir,
        signal: deps.signal,
        concurrency: deps.concurrency,
        ...(deps.verify ? { verify: { lanes: VERIFY_LANES, concurrency: deps.verify.concurrency } } : {}),
      });
    }
    const abandoned = new Set<string>();
    return {
      queue,
      blobs,
      ...(verifyQueue ? { verifyQueue } : {}),
      distributed: Boolean(env.redisUrl),
      where: describeTarget(target),
      abandon: (jobIds) => jobIds.forEach((id) => abandoned.add(id)),
      close: async () => {
        // The workers first: the jobs they were running go back to the queue, then out of it.
        await workers?.close();
        await verifyQueue?.close();
        const removed = await queue.cancel([...abandoned]).catch(() => 0);
        if (removed) logger.info({ removed }, 'removed the jobs this build left queued');
        await queue.close().catch(() => undefined);
        await privateRedis?.stop();
      },
    };
  } catch (err) {
    await verifyQueue?.close();
    await queue.close().catch(() => undefined);
    await privateRedis?.stop();
    throw err;
  }
}
