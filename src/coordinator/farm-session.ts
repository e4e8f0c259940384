import type { Logger } from 'pino';
import type { Env } from '../config/env.js';
import type { ContainerRuntime } from '../executor/runtime.js';
import { BLOB_PREFIX, BlobStore } from '../queue/blob-store.js';
import { BuildQueue, startBuildWorker, type BuildWorker } from '../queue/build-queue.js';
import { loadFarmKey } from '../queue/farm-key.js';
import { startPrivateRedis, type PrivateRedis } from '../queue/private-redis.js';
import { closeConnection, connectChecked, describeTarget, type RedisTarget } from '../queue/redis-connection.js';
import { startVerifyWorker, VerifyQueue, type VerifyWorker } from '../queue/verify-queue.js';
import { VERIFY_LANES } from '../job/verify-job.js';
import { markKvmBroken } from '../verify/kvm-broken.js';
import { verifyProcessor } from '../worker/verify-worker.js';
import { buildProcessor, reapOrphans } from '../worker/build-worker.js';

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
  let worker: BuildWorker | undefined;
  let verifyWorker: VerifyWorker | undefined;
  const verifyQueue = deps.verify ? new VerifyQueue(target, env.queueName, key) : undefined;
  try {
    await queue.ready();
    await verifyQueue?.ready();
    const blobs = new BlobStore(queue.redis, BLOB_PREFIX);
    if (!env.redisUrl) {
      // A kfarm build killed with SIGKILL on this host left its containers: remove them.
      await reapOrphans(deps.runtime, env.hostname, logger).catch(() => undefined);
      // a verify-only session (concurrency 0) runs no builds: it must not take another build's jobs
      if (deps.concurrency > 0) worker = await startBuildWorker(target, env.queueName, deps.concurrency, buildProcessor({
        runtime: deps.runtime,
        blobs,
        logger: logger.child({ worker: 'in-process' }),
        hostname: env.hostname,
        signal: deps.signal,
      }), { key, logger });
      if (deps.verify) {
        verifyWorker = await startVerifyWorker(target, env.queueName, VERIFY_LANES, deps.verify.concurrency, verifyProcessor({
          runtime: deps.runtime,
          blobs,
          stateDir: env.stateDir,
          logger: logger.child({ worker: 'in-process' }),
          worker: `${env.hostname}:${process.pid}`,
          hostname: env.hostname,
          concurrency: deps.verify.concurrency,
          signal: deps.signal,
          // as `kfarm worker` does: the next local run routes this host's boots to TCG at once
          onKvmBroken: () => {
            markKvmBroken(env.stateDir).catch((err: unknown) => logger.warn({ err }, 'could not remember that KVM cannot boot a guest here'));
          },
        }), { key, logger });
      }
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
        // The worker first: the jobs it was running go back to the queue, then out of it.
        await worker?.close().catch(() => undefined);
        await verifyWorker?.close().catch(() => undefined);
        await verifyQueue?.close();
        const removed = await queue.cancel([...abandoned]).catch(() => 0);
        if (removed) logger.info({ removed }, 'removed the jobs this build left queued');
        await queue.close().catch(() => undefined);
        await privateRedis?.stop();
      },
    };
  } catch (err) {
    await verifyWorker?.close().catch(() => undefined);
    await verifyQueue?.close();
    await queue.close().catch(() => undefined);
    await privateRedis?.stop();
    throw err;
  }
}
