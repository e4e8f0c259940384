import { defaultConcurrency } from '../../config/concurrency.js';
import { env } from '../../config/env.js';
import { KfarmError, describeError } from '../../errors/kfarm-error.js';
import { DockerRuntime } from '../../executor/docker-runtime.js';
import { rootLogger } from '../../logging/logger.js';
import { loadFarmKey } from '../../queue/farm-key.js';
import { closeConnection, connectChecked } from '../../queue/redis-connection.js';
import { kvmUsable } from '../../verify/boot-kernel.js';
import { parseVerifyLanes, type VerifyLane } from '../../job/verify-job.js';
import { bootConcurrency } from '../../verify/verify-kernel.js';
import { kvmKnownBroken } from '../../verify/kvm-broken.js';
import { removeOwnContainers } from '../../worker/build-worker.js';
import { startWorkerSet } from '../../worker/worker-set.js';
import type { CliContext } from '../context.js';
import { usableStateDir } from '../../config/state-dir.js';

/** `kfarm worker` (options: commands/worker.ts) */
export async function workerAction(ctx: CliContext, given: { concurrency?: number; verify?: string }): Promise<void> {
  const opts = { ...given, concurrency: given.concurrency ?? defaultConcurrency() };
  if (!env.redisUrl) {
    throw new KfarmError('BAD_OPTION', 'kfarm worker needs REDIS_URL', {
      hint: "Point it at the farm's Redis: REDIS_URL=redis://host:6379 kfarm worker. (`kfarm build` without REDIS_URL runs its own workers.)",
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
  // only proves Redis is there, with a hint when it is not: the workers' own connections
  // reconnect for ever, so a Redis restart does not leave the worker failing every job
  closeConnection(await connectChecked({ url: env.redisUrl }));
  const boots = bootConcurrency();
  const workers = await startWorkerSet({
    target: { url: env.redisUrl },
    queueName: env.queueName,
    key,
    runtime,
    logger,
    hostname: env.hostname,
    stateDir: env.stateDir,
    signal: ctx.signal,
    concurrency: opts.concurrency,
    verify: { lanes, concurrency: boots },
    advertise: true,
    graceMs: 3000,
  });
  ctx.progress(
    `kfarm worker ${env.hostname} (pid ${process.pid}) waiting for builds on queue ${env.queueName}, ${opts.concurrency} at once${lanes.length ? `; boots (${lanes.join(', ')}), ${boots} at once` : ''}`,
  );
  await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
  ctx.progress('stopping: running builds are killed and go back to the queue');
  await workers.close();
  // The abort removed the containers of running builds; whatever is left of this process's
  // own (a removal that failed, a build that was starting) goes now.
  await removeOwnContainers(runtime, logger);
  ctx.setExitCode(0);
}
