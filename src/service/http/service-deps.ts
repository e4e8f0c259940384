import type { Logger } from 'pino';
import type { Env } from '../../config/env.js';
import type { ErrorCode } from '../../errors/kfarm-error.js';
import type { ContainerRuntime } from '../../executor/runtime.js';
import type { KernelTarget } from '../../matrix/kernel-target.js';
import type { BuildRunner } from '../builds/build-runner.js';
import type { DashboardWorker } from '../dashboard/dashboard-model.js';
import type { FarmDb } from '../farm-db.js';
import type { ServicePaths } from '../service-paths.js';

/** What the API's handlers work with: one of each, made by serve.ts. */
export interface ServiceDeps {
  db: FarmDb;
  runner: BuildRunner;
  paths: ServicePaths;
  env: Env;
  runtime: ContainerRuntime;
  logger: Logger;
  exitCodeFor: (code: ErrorCode) => number;
  /** the kernels the farm can build for: its workers' (REDIS_URL) or this engine's images */
  listKernels: () => Promise<KernelTarget[]>;
  /** the farm's workers now (their adverts, with REDIS_URL); absent: this process is the one worker (local mode) */
  workers?: () => DashboardWorker[];
  /** builds at once in this process in local mode (the local worker's concurrency) */
  concurrency?: number;
  /** starts a look at the archive and a sync of what it offers anew; resolves when it has started */
  triggerSync?: () => Promise<{ started: boolean; reason?: string }>;
}
