import type { Logger } from 'pino';
import type { Env } from '../config/env.js';
import { usableStateDir } from '../config/state-dir.js';
import { describeError, type ErrorCode } from '../errors/kfarm-error.js';
import type { ContainerRuntime } from '../executor/runtime.js';
import { startPrivateRedis } from '../queue/private-redis.js';
import { closeConnection, connect, describeTarget, type RedisTarget } from '../queue/redis-connection.js';
import { farmCatalog } from '../coordinator/farm-catalog.js';
import { kernelTargets, listKfarmImages } from '../images/catalog.js';
import { makeDirs } from '../util/make-dir.js';
import { BuildRunner } from './builds/build-runner.js';
import { openFarmDb } from './db/open-farm-db.js';
import { afterBuild, apiReportPath } from './findings/after-build.js';
import type { BuildRow } from './farm-db.js';
import { startServiceServer, type ListenOptions } from './http/service-server.js';
import { webhookEvent } from './notify/webhook-event.js';
import { createWebhookNotifier, type WebhookNotifier } from './notify/webhook-notifier.js';
import { servicePaths } from './service-paths.js';
import { watchOnce, type WatchConfig } from './watch/watch-run.js';
import { startWatchSchedule, type WatchSchedule } from './watch/watch-schedule.js';
import { startWorkerWatch, type WorkerWatch } from './watch/worker-watch.js';

export interface ServeOptions {
  env: Env;
  runtime: ContainerRuntime;
  logger: Logger;
  listen: ListenOptions;
  exitCodeFor: (code: ErrorCode) => number;
  /** builds at once per build in local mode */
  concurrency?: number;
  /** the farm's repositories (serve's --apt/--dnf/--oci, checked by the CLI before the service starts) */
  publish?: (build: BuildRow, outDir: string) => Promise<void>;
  /** watch the archive: new kernels are synced and every registered module built for them */
  watch?: WatchConfig & { every?: number; cron?: string };
  /** POST events (kernel built, new failure, regression, farm fault) here, signed with the secret in secretFile */
  webhook?: { url: string; secretFile: string };
  /** the farm's signing key: builds of modules registered with sign=true are signed with it (BuildRunner) */
  signing?: { keyPath: string; certPath: string; pin?: string };
}

export interface RunningService {
  url: string;
  /** builds a killed service had left queued or running, now queued again */
  resumed: number;
  close(): Promise<void>;
}

/**
 * `kfarm serve`: the database, a Redis (REDIS_URL's, or the private one every local build joins)
 * for the watch's schedule and the webhook's deliveries, the build runner (resuming what a killed
 * service left), the watch, the API. The coordinator stays the one place that plans and runs
 * builds: the runner calls runBuild, the watch queues builds on the runner.
 */
export async function startService(options: ServeOptions): Promise<RunningService> {
  const { env, logger } = options;
  await usableStateDir(env.stateDir);
  const paths = servicePaths(env.stateDir);
  await makeDirs(paths.root);
  const db = openFarmDb(paths.db, logger);
  const closers: Array<() => Promise<void>> = [async () => Promise.resolve(db.close())];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch((err: unknown) => logger.warn({ err: describeError(err) }, 'closing the service'));
  };
  try {
    let target: RedisTarget | undefined;
    if (options.watch || options.webhook) {
      // held for the service's life: a local build's farm session joins this same server
      const redis = env.redisUrl ? { target: { url: env.redisUrl }, stop: async () => Promise.resolve() } : await startPrivateRedis(env.stateDir, logger);
      closers.push(() => redis.stop());
      target = redis.target;
    }
    let notifier: WebhookNotifier | undefined;
    if (options.webhook && target) {
      const n = await createWebhookNotifier({ url: options.webhook.url, secretFile: options.webhook.secretFile, connection: target, queueName: env.queueName, logger });
      closers.push(() => n.close());
      notifier = n;
    }
    const runner = new BuildRunner({
      db,
      env,
      runtime: options.runtime,
      logger,
      paths,
      exitCodeFor: options.exitCodeFor,
      ...(options.concurrency ? { concurrency: options.concurrency } : {}),
      ...(options.publish ? { publish: options.publish } : {}),
      ...(options.signing ? { signing: options.signing } : {}),
      // what a build changed (a kernel built, a new failure, a regression) goes to the webhook
      ...(notifier ? { onFinished: afterBuild({ db, notify: (e) => notifier.notify(e), logger, reportPath: apiReportPath }) } : {}),
    });
    closers.push(() => runner.close());
    const fault = (kind: 'sync-failed' | 'worker-gone' | 'other', message: string, subject?: string) =>
      notifier?.notify(webhookEvent({ type: 'farm-fault', kind, message: message.slice(0, 2000) || 'a farm fault with no message', ...(subject ? { subject } : {}) }));
    let schedule: WatchSchedule | undefined;
    if (options.watch && target) {
      const watch = options.watch;
      const s = await startWatchSchedule({
        target,
        queueName: env.queueName,
        ...(watch.cron ? { cron: watch.cron } : { every: watch.every ?? 3_600_000 }),
        logger,
        run: () =>
          watchOnce({
            db,
            runner,
            runtime: options.runtime,
            logger,
            stateDir: env.stateDir,
            config: watch,
            onFault: (_kind, message, subject) => fault('sync-failed', message, subject),
          }).catch((err: unknown) => {
            fault('sync-failed', `the watch could not read the archive: ${describeError(err)}`);
            throw err;
          }),
      });
      closers.push(() => s.close());
      schedule = s;
    }
    // the farm's workers for the dashboard (GET /api/v1/workers), and a gone one told to the webhook
    let workers: WorkerWatch | undefined;
    if (env.redisUrl) {
      const w = startWorkerWatch({
        target: target ?? { url: env.redisUrl },
        queueName: env.queueName,
        logger,
        ...(notifier ? { onGone: (gone) => fault('worker-gone', `worker ${gone.worker} on ${gone.hostname} stopped advertising (gone, or stopped)`, gone.worker) } : {}),
      });
      closers.push(() => w.close());
      workers = w;
    }
    // with REDIS_URL the kernels are the workers' (their adverts), as kfarm build plans them; else this engine's images
    let listKernels = async () => kernelTargets(await listKfarmImages(options.runtime));
    if (env.redisUrl) {
      const target = { url: env.redisUrl };
      const redis = connect(target);
      closers.push(async () => Promise.resolve(closeConnection(redis)));
      listKernels = async () => kernelTargets((await farmCatalog({ runtime: options.runtime, farm: { redis, queueName: env.queueName, where: describeTarget(target) } })).images);
    }
    const server = await startServiceServer(
      {
        db,
        runner,
        paths,
        env,
        runtime: options.runtime,
        logger,
        exitCodeFor: options.exitCodeFor,
        listKernels,
        ...(workers ? { workers: () => workers.workers() } : {}),
        ...(options.concurrency ? { concurrency: options.concurrency } : {}),
        ...(schedule ? { triggerSync: () => schedule.trigger() } : {}),
      },
      options.listen,
    );
    closers.push(() => server.close());
    const resumed = runner.resume();
    if (resumed > 0) logger.info({ resumed }, 'builds a stopped service left unfinished are queued again');
    return { url: server.url, resumed, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
