import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEnv } from '../../src/config/env.js';
import { buildOptions } from '../../src/config/build-options.js';
import type { BuildDeps } from '../../src/coordinator/build-types.js';
import type { FarmSession } from '../../src/coordinator/farm-session.js';
import { runJobs } from '../../src/coordinator/run-jobs.js';
import { KfarmError } from '../../src/errors/kfarm-error.js';
import { BLOB_PREFIX, BlobStore } from '../../src/queue/blob-store.js';
import { BuildQueue, startBuildWorker, type BuildWorker } from '../../src/queue/build-queue.js';
import type { JobPayload } from '../../src/job/job-payload.js';
import { payloadFor } from '../../src/coordinator/build.js';
import { startPrivateRedis, type PrivateRedis } from '../../src/queue/private-redis.js';
import { tempDir } from '../helpers/kfarm-cli.js';

/**
 * A job that fails on the farm in every attempt ends `worker-error`; its log in the report is
 * what the last attempt printed (kept by the worker as a blob, sealed in the job's log), after
 * the error and its hint. Real Redis, real BullMQ retries (about 30 s of backoff).
 */
const logger = pino({ level: 'silent' });
const key = randomBytes(32);
const queueName = `test-attempt-log-${process.pid}`;
let redis: PrivateRedis;
let queue: BuildQueue;
let worker: BuildWorker;

const payload: JobPayload = payloadFor(
  { sha256: 'ab'.repeat(32) },
  { kernel: '6.1.0-56-amd64', arch: 'x86_64', image: 'debian-12', imageRef: 'kfarm/debian-12:latest', imageId: `sha256:${'cd'.repeat(32)}` },
  buildOptions({}),
  'attempt-log',
);

beforeAll(async () => {
  redis = await startPrivateRedis(await tempDir('attempt-log-state'), logger);
  queue = new BuildQueue(redis.target, queueName, key);
  await queue.ready();
  // Every attempt is a farm fault that carries what the container printed.
  worker = await startBuildWorker(
    redis.target,
    queueName,
    1,
    async (_p, job) => {
      throw new KfarmError('CONTAINER_FAILED', `the build container ended without a result (attempt ${job.attempt})`, {
        hint: 'The engine may have restarted under it; it was retried.',
        log: Buffer.from(`make: compiling hello.c on attempt ${job.attempt}\n`),
      });
    },
    { key, logger },
  );
});

afterAll(async () => {
  await worker?.close();
  await queue?.close();
  await redis?.stop();
});

describe("the last attempt's log", () => {
  it("a job that runs out of attempts ends worker-error with the last attempt's log and the error's hint", async () => {
    const session: FarmSession = {
      queue,
      blobs: new BlobStore(queue.redis, BLOB_PREFIX),
      distributed: false,
      where: 'test',
      abandon: () => undefined,
      close: async () => undefined,
    };
    const deps: BuildDeps = { env: readEnv({}), runtime: undefined as never, logger, signal: new AbortController().signal, onEvent: () => undefined };
    const { results, warnings } = await runJobs({ access: session, payloads: [payload], noCache: true, deps, keepSource: async () => undefined, fatal: () => undefined });
    expect(warnings).toEqual([]);
    const [result] = results;
    expect(result?.record.reason).toBe('worker-error');
    expect(result?.record.message).toContain('ended without a result (attempt 5)');
    expect(result?.record.message).toContain('The engine may have restarted');
    const log = result?.files.get(result.record.log.sha256)?.toString('utf8') ?? '';
    expect(log).toContain('[kfarm] the job failed on the farm: the build container ended without a result (attempt 5)');
    expect(log).toContain('[kfarm] The engine may have restarted under it; it was retried.');
    expect(log).toContain('[kfarm] what attempt 5 printed:\nmake: compiling hello.c on attempt 5\n');
    expect(log).not.toContain('attempt 4\n');
  }, 90_000);
});
