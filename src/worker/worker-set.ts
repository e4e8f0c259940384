import type { Logger } from 'pino';
import { describeError } from '../errors/kfarm-error.js';
import type { ContainerRuntime } from '../executor/runtime.js';
import { listKfarmImages } from '../images/catalog.js';
import type { VerifyLane } from '../job/verify-job.js';
import { BLOB_PREFIX, BlobStore } from '../queue/blob-store.js';
import { startBuildWorker, type BuildWorker } from '../queue/build-queue.js';
import { closeConnection, connect, type RedisTarget } from '../queue/redis-connection.js';
import { startVerifyWorker, type VerifyWorker } from '../queue/verify-queue.js';
import { startAdvertising, type Advertiser } from '../queue/worker-registry.js';
import { settledWithin } from '../util/settled-within.js';
import { markKvmBroken } from '../verify/kvm-broken.js';
import { buildProcessor, reapOrphans } from './build-worker.js';
import { verifyProcessor } from './verify-worker.js';

/**
 * The workers of one host on one queue: what `kfarm worker` runs against the farm's Redis and
 * what a local `kfarm build` runs in its own process against its private one. One wiring, so
 * the two cannot drift apart (a part added to one and forgotten in the other).
 */
export interface WorkerSetOptions {
  target: RedisTarget;
  queueName: string;
  /** the farm key: payloads and results are sealed with it */
  key: Buffer;
  runtime: ContainerRuntime;
  /** the queue side's logs: refused payloads, Redis trouble, KVM found broken */
  logger: Logger;
  /** each build's and boot's logs (default: logger) */
  jobLogger?: Logger;
  /** this host's name (KFARM_HOSTNAME): labels containers, names the worker */
  hostname: string;
  stateDir: string;
  /** aborted when this process stops: running containers are killed */
  signal: AbortSignal;
  /** builds at once; 0: no build worker (a verify-only session must not take another build's jobs) */
  concurrency: number;
  /** the boot lanes to take and boots at once over all of them; absent or no lanes: no verify worker */
  verify?: { lanes: readonly VerifyLane[]; concurrency: number };
  /** tell coordinators which kernels this host builds and which lanes it boots (a farm's worker) */
  advertise?: boolean;
  /** how long close() lets running jobs end before stopping them hard (default 10 s) */
  graceMs?: number;
}

export interface WorkerSet {
  /** Withdraws the advert and stops the workers together (their running jobs go back to the queue), then the connection. */
  close(): Promise<void>;
}

/**
 * Removes what dead kfarm processes on this host left, then starts the build worker, the verify
 * worker and the advert, in that order. A part that fails to start stops the ones before it.
 */
export async function startWorkerSet(opts: WorkerSetOptions): Promise<WorkerSet> {
  const { target, queueName, key, runtime, logger, hostname, stateDir, signal } = opts;
  const jobLogger = opts.jobLogger ?? logger;
  /** the name results and adverts carry */
  const worker = `${hostname}:${process.pid}`;
  const lanes = opts.verify?.lanes ?? [];
  // A kfarm process killed with SIGKILL on this host left its containers. Not being able to
  // list them is no reason not to build: the builds meet the engine's trouble themselves.
  await reapOrphans(runtime, hostname, logger).catch((err: unknown) =>
    logger.warn({ err: describeError(err) }, 'could not look for build containers left by a kfarm process that is gone'),
  );
  // blobs and the advert; the BullMQ workers open their own connections. It reconnects
  // for ever, so a Redis restart does not leave the workers failing every job.
  const redis = connect(target);
  const blobs = new BlobStore(redis, BLOB_PREFIX);
  let kvmBroken = false;
  let build: BuildWorker | undefined;
  let verify: VerifyWorker | undefined;
  let advertiser: Advertiser | undefined;
  // builds running now: the advert says it, again each time it changes (the dashboard's workers)
  let running = 0;
  const counted =
    <A extends unknown[], R>(f: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      running++;
      advertiser?.refresh();
      try {
        return await f(...args);
      } finally {
        running--;
        advertiser?.refresh();
      }
    };
  // what the advert says this host boots: KVM leaves once a boot here showed it cannot run a guest
  const advertisedLanes = (): VerifyLane[] => (kvmBroken ? lanes.filter((l) => l !== 'kvm') : [...lanes]);
  const close = async (graceMs = opts.graceMs ?? 10_000): Promise<void> => {
    // Supervisors wait a few seconds after SIGTERM: every step that talks to Redis is bounded,
    // because with Redis gone its commands would wait for a reconnect that never comes.
    await Promise.all([
      advertiser ? settledWithin(advertiser.stop(), redis.status === 'ready' ? 1000 : 0) : undefined,
      build?.close(graceMs).catch((err: unknown) => logger.warn({ err: describeError(err) }, 'could not stop the build worker')),
      verify?.close(graceMs).catch((err: unknown) => logger.warn({ err: describeError(err) }, 'could not stop the verify worker')),
    ]);
    closeConnection(redis);
  };
  try {
    if (opts.concurrency > 0) {
      build = await startBuildWorker(target, queueName, opts.concurrency, counted(buildProcessor({ runtime, blobs, logger: jobLogger, hostname, signal })), { key, logger });
    }
    if (opts.verify && lanes.length > 0) {
      const boots = opts.verify.concurrency;
      verify = await startVerifyWorker(
        target,
        queueName,
        lanes,
        boots,
        verifyProcessor({
          runtime,
          blobs,
          stateDir,
          logger: jobLogger,
          worker,
          hostname,
          concurrency: boots,
          signal,
          onKvmBroken: () => {
            // still takes the KVM lane (booting under TCG), but no longer tells coordinators it
            // does KVM; the next run on this host routes its boots to TCG at once
            kvmBroken = true;
            markKvmBroken(stateDir).catch((err: unknown) => logger.warn({ err: describeError(err) }, 'could not remember that KVM cannot boot a guest here'));
          },
        }),
        { key, logger },
      );
    }
    // Coordinators learn from it which kernels this host can build, so they need no Docker of their own.
    if (opts.advertise) {
      advertiser = await startAdvertising(
        redis,
        queueName,
        async () => ({
          worker,
          hostname,
          pid: process.pid,
          concurrency: opts.concurrency,
          images: await listKfarmImages(runtime),
          verify: advertisedLanes(),
          running,
        }),
        logger,
      );
    }
  } catch (err) {
    await close(0);
    throw err;
  }
  return { close: () => close() };
}
