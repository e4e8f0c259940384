import type { Logger } from 'pino';
import type { Env } from '../config/env.js';
import { usableStateDir } from '../config/state-dir.js';
import type { ErrorCode } from '../errors/kfarm-error.js';
import type { ContainerRuntime } from '../executor/runtime.js';
import { makeDirs } from '../util/make-dir.js';
import { BuildRunner } from './builds/build-runner.js';
import type { BuildRow } from './farm-db.js';
import { openFarmDb } from './db/open-farm-db.js';
import { startServiceServer, type ListenOptions } from './http/service-server.js';
import { servicePaths } from './service-paths.js';

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
}

export interface RunningService {
  url: string;
  /** builds a killed service had left queued or running, now queued again */
  resumed: number;
  close(): Promise<void>;
}

/**
 * `kfarm serve`: the database, the build runner (resuming what a killed service left), the API.
 * The coordinator stays the one place that plans and runs builds: the runner calls runBuild.
 */
export async function startService(options: ServeOptions): Promise<RunningService> {
  const { env, logger } = options;
  await usableStateDir(env.stateDir);
  const paths = servicePaths(env.stateDir);
  await makeDirs(paths.root);
  const db = openFarmDb(paths.db, logger);
  const runner = new BuildRunner({
    db,
    env,
    runtime: options.runtime,
    logger,
    paths,
    exitCodeFor: options.exitCodeFor,
    ...(options.concurrency ? { concurrency: options.concurrency } : {}),
    ...(options.publish ? { publish: options.publish } : {}),
  });
  let server;
  try {
    server = await startServiceServer({ db, runner, paths, env, runtime: options.runtime, logger, exitCodeFor: options.exitCodeFor }, options.listen);
  } catch (err) {
    db.close();
    throw err;
  }
  const resumed = runner.resume();
  if (resumed > 0) logger.info({ resumed }, 'builds a stopped service left unfinished are queued again');
  return {
    url: server.url,
    resumed,
    close: async () => {
      await server.close();
      await runner.close();
      db.close();
    },
  };
}
