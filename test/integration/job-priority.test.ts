import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildOptions } from '../../src/config/build-options.js';
import { readEnv } from '../../src/config/env.js';
import type { BuildDeps } from '../../src/coordinator/build-types.js';
import { payloadFor } from '../../src/coordinator/build.js';
import type { FarmSession } from '../../src/coordinator/farm-session.js';
import { runJobs } from '../../src/coordinator/run-jobs.js';
import { BLOB_PREFIX, BlobStore } from '../../src/queue/blob-store.js';
import { BuildQueue, startBuildWorker, type BuildWorker } from '../../src/queue/build-queue.js';
import { jobPriority } from '../../src/queue/job-priority.js';
import type { JobPayload } from '../../src/job/job-payload.js';
import { startPrivateRedis, type PrivateRedis } from '../../src/queue/private-redis.js';
import { recordForPayload } from '../helpers/kernel-record.js';
import { tempDir } from '../helpers/kfarm-cli.js';

/**
 * Longest builds first: jobs queued small-first are taken by a worker in the order of their
 * estimated size, largest first. Real Redis and BullMQ, the worker in process, no Docker.
 */
const logger = pino({ level: 'silent' });
const key = randomBytes(32);
let redis: PrivateRedis;
let queue: BuildQueue;
let worker: BuildWorker | undefined;

beforeAll(async () => {
  redis = await startPrivateRedis(await tempDir('job-priority-state'), logger);
});

afterAll(async () => {
  await worker?.close();
  await queue?.close();
  await redis?.stop();
});

it('a worker takes the queued jobs with the most compile units first, whatever order they were queued in', async () => {
  const name = `test-priority-${process.pid}`;
  queue = new BuildQueue(redis.target, name, key);
  await queue.ready();
  const blobs = new BlobStore(queue.redis, BLOB_PREFIX);
  // kernel name -> the units of its source: queued smallest first
  const units = new Map([
    ['k-1', 1],
    ['k-2', 2],
    ['k-5', 5],
    ['k-8', 8],
    ['k-24', 24],
  ]);
  const payloads: JobPayload[] = [...units.keys()].map((kernel) =>
    payloadFor(
      { sha256: randomBytes(32).toString('hex') },
      { kernel, arch: 'x86_64', image: 'debian-12', imageRef: 'kfarm/debian-12:latest', imageId: `sha256:${'cd'.repeat(32)}` },
      buildOptions({}),
      'job-priority',
    ),
  );
  const session: FarmSession = { queue, blobs, distributed: false, where: 'test', abandon: () => undefined, close: async () => undefined };
  const deps: BuildDeps = { env: readEnv({}), runtime: undefined as never, logger, signal: new AbortController().signal, onEvent: () => undefined };
  const ran = runJobs({
    access: session,
    payloads,
    noCache: true,
    deps,
    keepSource: async () => undefined,
    fatal: () => undefined,
    priority: (p) => jobPriority(units.get(p.kernel) ?? 1),
  });
  // every job queued before a worker exists, so the order is the queue's, not the submission race's
  for (let i = 0; ((await queue.queue.getJobCounts('prioritized')).prioritized ?? 0) < payloads.length; i++) {
    if (i > 200) throw new Error('the jobs were not queued as prioritized jobs');
    await new Promise((r) => setTimeout(r, 25));
  }
  const order: string[] = [];
  worker = await startBuildWorker(
    redis.target,
    name,
    1,
    async (p) => {
      order.push(p.kernel);
      return recordForPayload(p, { verdict: 'excluded', log: await blobs.put(Buffer.from(`log of ${p.kernel}\n`)), durationMs: 1 });
    },
    { key, logger },
  );
  const { results } = await ran;
  expect(results.map((r) => r.record.kernel)).toEqual([...units.keys()]);
  expect(order).toEqual(['k-24', 'k-8', 'k-5', 'k-2', 'k-1']);
}, 60_000);

it('waiting for many jobs at once leaves no MaxListenersExceededWarning (BullMQ adds a closing listener per waited job)', async () => {
  const name = `test-many-waits-${process.pid}`;
  const many = new BuildQueue(redis.target, name, key);
  await many.ready();
  const blobs = new BlobStore(many.redis, BLOB_PREFIX);
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  let manyWorker: BuildWorker | undefined;
  try {
    // more jobs than Node's default of 10 listeners, all waited for together as a build does
    const payloads = Array.from({ length: 14 }, (_, i) =>
      payloadFor(
        { sha256: randomBytes(32).toString('hex') },
        { kernel: `k-${i}`, arch: 'x86_64', image: 'debian-12', imageRef: 'kfarm/debian-12:latest', imageId: `sha256:${'cd'.repeat(32)}` },
        buildOptions({}),
        'many-waits',
      ),
    );
    const session: FarmSession = { queue: many, blobs, distributed: false, where: 'test', abandon: () => undefined, close: async () => undefined };
    const deps: BuildDeps = { env: readEnv({}), runtime: undefined as never, logger, signal: new AbortController().signal, onEvent: () => undefined };
    const ran = runJobs({ access: session, payloads, noCache: true, deps, keepSource: async () => undefined, fatal: () => undefined });
    manyWorker = await startBuildWorker(
      redis.target,
      name,
      2,
      async (p) => recordForPayload(p, { verdict: 'excluded', log: await blobs.put(Buffer.from(`log of ${p.kernel}\n`)), durationMs: 1 }),
      { key, logger },
    );
    const { results } = await ran;
    expect(results).toHaveLength(payloads.length);
    // warnings are emitted on the next tick
    await new Promise((r) => setTimeout(r, 50));
    expect(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'))).toEqual([]);
  } finally {
    process.off('warning', onWarning);
    await manyWorker?.close();
    await many.close();
  }
}, 60_000);
