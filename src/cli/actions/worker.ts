import { defaultConcurrency } from '../../config/concurrency.js';
import { env } from '../../config/env.js';
import { KfarmError, describeError } from '../../errors/kfarm-error.js';
import { DockerRuntime } from '../../executor/docker-runtime.js';
import { rootLogger } from '../../logging/logger.js';
import { currentInstance } from '../../process/instance.js';
import { BLOB_PREFIX, BlobStore } from '../../queue/blob-store.js';
import { startBuildWorker } from '../../queue/build-queue.js';
import { loadFarmKey } from '../../queue/farm-key.js';
import { startAdvertising } from '../../queue/worker-registry.js';
import { listKfarmImages } from '../../images/catalog.js';
import { closeConnection, connect, connectChecked } from '../../queue/redis-connection.js';
import { settledWithin } from '../../util/settled-within.js';
import { LABEL_INSTANCE, buildProcessor, reapOrphans } from '../../worker/build-worker.js';
import { startVerifyWorker } from '../../queue/verify-queue.js';
import { kvmUsable } from '../../verify/boot-kernel.js';
import { parseVerifyLanes, type VerifyLane } from '../../job/verify-job.js';
import { bootConcurrency } from '../../verify/verify-kernel.js';
import { kvmKnownBroken, markKvmBroken, verifyProcessor } from '../../worker/verify-worker.js';
import type { CliContext } from '../context.js';
import { usableStateDir } from '../../config/state-dir.js';

/** `kfarm worker` (options: commands/worker.ts) */
export async function workerAction(ctx: CliContext, given: { concurrency?: number; verify?: string }): Promise<void> {
  const opts = { ...given, concurrency: given.concurrency ?? defaultConcurrency() };
  if (!env.redisUrl) {
    throw new KfarmError('BAD_OPTION', 'kfarm worker needs REDIS_URL', {
      hint: 'Point it at the farm\'s Redis: REDIS_URL=redis://host:6379 kfarm worker. (`kfarm build` without REDIS_URL runs its own workers.)',
    });
  }
  await usableStateDir(env.stateDir);
  let lanes: VerifyLane[];
  try {
    // by default KVM only where it is usable and no earlier boot here showed it cannot run a guest
    lanes = opts.verify === undefined ? ((await kvmUsable()) && !(await kvmKnownBroken(env.stateDir)) ? ['kvm', 'tcg'] : ['tcg']) : parseVerifyLanes(opts.verify);
  } catch (err) {
    throw new KfarmError('BAD_OPTION', describeError(err), { hint: 'For example: kfarm worker --verify tcg' });
  }
  if (lanes.includes('kvm') && !(await kvmUsable())) {
    throw new KfarmError('BAD_OPTION', '--verify kvm was asked for, but /dev/kvm is missing or not usable by this user', {
      hint: 'Add the user to the kvm group, or take TCG boots only: --verify tcg.',
    });
  }
  const logger = rootLogger.child({ worker: env.hostname });
  const key = await loadFarmKey({ keyFile: env.farmKeyFile, distributed: true, stateDir: env.stateDir, logger });
  const runtime = new DockerRuntime();
  await runtime.ping();
  await reapOrphans(runtime, env.hostname, logger);
  // The checked connection only proves Redis is there; the worker's own one reconnects
  // forever, so a Redis restart does not leave the worker failing every job.
  closeConnection(await connectChecked({ url: env.redisUrl }));
  const redis = connect({ url: env.redisUrl });
  const worker = await startBuildWorker({ url: env.redisUrl }, env.queueName, opts.concurrency, buildProcessor({
    runtime,
    blobs: new BlobStore(redis, BLOB_PREFIX),
    logger,
    hostname: env.hostname,
    signal: ctx.signal,
  }), { key, logger });
  const boots = bootConcurrency();
  let kvmBroken = false;
  const verifyWorker = lanes.length === 0 ? undefined : await startVerifyWorker({ url: env.redisUrl }, env.queueName, lanes, boots, verifyProcessor({
    runtime,
    blobs: new BlobStore(redis, BLOB_PREFIX),
    stateDir: env.stateDir,
    logger,
    worker: `${env.hostname}:${process.pid}`,
    hostname: env.hostname,
    concurrency: boots,
    signal: ctx.signal,
    onKvmBroken: () => {
      // still takes the KVM lane (booting under TCG), but no longer tells coordinators it does KVM
      kvmBroken = true;
      markKvmBroken(env.stateDir).catch((err: unknown) => logger.warn({ err: describeError(err) }, 'could not remember that KVM cannot boot a guest here'));
    },
  }), { key, logger });
  // Tell coordinators which kernels this host can build, so they need no Docker of their own.
  const advertiser = await startAdvertising(redis, env.queueName, async () => ({
    worker: `${env.hostname}:${process.pid}`,
    hostname: env.hostname,
    pid: process.pid,
    concurrency: opts.concurrency,
    images: await listKfarmImages(runtime),
    verify: kvmBroken ? lanes.filter((l) => l !== 'kvm') : lanes,
  }), logger);
  ctx.progress(`kfarm worker ${env.hostname} (pid ${process.pid}) waiting for builds on queue ${env.queueName}, ${opts.concurrency} at once${lanes.length ? `; boots (${lanes.join(', ')}), ${boots} at once` : ''}`);
  await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
  ctx.progress('stopping: running builds are killed and go back to the queue');
  // Supervisors wait a few seconds after SIGTERM: every step that talks to Redis is bounded,
  // because with Redis gone its commands would wait for a reconnect that never comes.
  await Promise.all([settledWithin(advertiser.stop(), redis.status === 'ready' ? 1000 : 0), worker.close(3000), verifyWorker?.close(3000)]);
  closeConnection(redis);
  // The abort removed the containers of running builds; whatever is left of this process's
  // own (a removal that failed, a build that was starting) goes now.
  const left = await runtime.listContainers({ [LABEL_INSTANCE]: currentInstance() }).catch(() => []);
  for (const c of left) {
    await runtime.removeContainer(c.id).catch((err: unknown) => logger.warn({ container: c.id, err: describeError(err) }, 'could not remove a build container'));
  }
  ctx.setExitCode(0);
}
