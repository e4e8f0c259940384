import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOptions } from '../../src/config/build-options.js';
import { readEnv } from '../../src/config/env.js';
import type { BuildDeps } from '../../src/coordinator/build-types.js';
import { payloadFor } from '../../src/coordinator/build.js';
import type { FarmSession } from '../../src/coordinator/farm-session.js';
import { runJobs } from '../../src/coordinator/run-jobs.js';
import { KfarmError } from '../../src/errors/kfarm-error.js';
import { BLOB_PREFIX, BlobStore } from '../../src/queue/blob-store.js';
import { BuildQueue, PASSES, startBuildWorker, type BuildWorker, type Processor } from '../../src/queue/build-queue.js';
import type { JobPayload, KernelRecord } from '../../src/job/job-payload.js';
import { startPrivateRedis, type PrivateRedis } from '../../src/queue/private-redis.js';
import { tempDir } from '../helpers/kfarm-cli.js';

/**
 * Workers hold different kernels. One that lacks a job's image (or holds another build of it)
 * passes the job on without spending an attempt, so the worker that holds it builds it on its
 * first attempt; a job no worker can take ends worker-error with the hint, after its passes
 * and attempts. Real Redis and BullMQ, workers in process, no Docker.
 */
const logger = pino({ level: 'silent' });
const key = randomBytes(32);
let redis: PrivateRedis;
const closers: Array<() => Promise<void>> = [];

const jobFor = (kernel: string): JobPayload =>
  payloadFor(
    { sha256: randomBytes(32).toString('hex') },
    { kernel, arch: 'x86_64', image: 'debian-12', imageRef: `kfarm/debian-12:${kernel}`, imageId: `sha256:${'cd'.repeat(32)}` },
    buildOptions({}),
    'image-routing',
  );

async function open(name: string): Promise<{ queue: BuildQueue; blobs: BlobStore }> {
  const queue = new BuildQueue(redis.target, name, key);
  await queue.ready();
  closers.push(() => queue.close());
  return { queue, blobs: new BlobStore(queue.redis, BLOB_PREFIX) };
}

async function run(queue: BuildQueue, blobs: BlobStore, payload: JobPayload) {
  const session: FarmSession = { queue, blobs, distributed: true, where: 'test', abandon: () => undefined, close: async () => undefined };
  const deps: BuildDeps = { env: readEnv({}), runtime: undefined as never, logger, signal: new AbortController().signal, onEvent: () => undefined };
  const { results } = await runJobs({ access: session, payloads: [payload], noCache: true, deps, keepSource: async () => undefined, fatal: () => undefined });
  return results[0];
}

const lacking =
  (calls: { n: number }): Processor =>
  async (p) => {
    calls.n++;
    throw new KfarmError('IMAGE_NOT_FOUND', `image ${p.imageRef} is not on worker lacking`, { hint: `Run \`kfarm images sync ${p.image} --kernels '${p.kernel}'\` on lacking.` });
  };

const holding =
  (blobs: BlobStore): Processor =>
  async (p, job): Promise<KernelRecord> => ({
    schemaVersion: 1,
    kernel: p.kernel,
    arch: p.arch,
    image: p.image,
    verdict: 'built',
    packageName: 'hello',
    packageVersion: '1.0.0',
    modules: [{ builtName: 'hello', destName: 'hello', destLocation: '/kernel/extra', installLocation: '/updates/dkms', file: await blobs.put(Buffer.from('module')) }],
    log: await blobs.put(Buffer.from('log\n')),
    logTruncated: false,
    durationMs: 1,
    worker: 'holding',
    attempt: job.attempt,
    finishedAt: new Date().toISOString(),
    cacheable: true,
  });

async function worker(name: string, process: Processor): Promise<BuildWorker> {
  const w = await startBuildWorker(redis.target, name, 1, process, { key, logger });
  closers.push(() => w.close());
  return w;
}

beforeAll(async () => {
  redis = await startPrivateRedis(await tempDir('image-routing-state'), logger);
});

afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await redis?.stop();
});

describe('routing a job to a worker that holds its image', () => {
  it('a worker without the kernel passes the job on; the one holding it builds it on attempt 1', async () => {
    const name = `test-route-pass-${process.pid}`;
    const { queue, blobs } = await open(name);
    const calls = { n: 0 };
    await worker(name, lacking(calls));
    // the holding worker joins once the lacking one has seen the job at least once
    const joined = (async () => {
      while (calls.n === 0) await new Promise((r) => setTimeout(r, 100));
      await worker(name, holding(blobs));
    })();
    const result = await run(queue, blobs, jobFor('6.1.0-56-amd64'));
    await joined;
    expect(calls.n).toBeGreaterThan(0);
    expect(result?.record.verdict).toBe('built');
    expect(result?.record.worker).toBe('holding');
    expect(result?.record.attempt, 'passing the job on spends none of its attempts').toBe(1);
  }, 60_000);

  it('a job no worker holds ends worker-error with the hint, after its passes and then its attempts', async () => {
    const name = `test-route-none-${process.pid}`;
    const { queue, blobs } = await open(name);
    const calls = { n: 0 };
    await worker(name, lacking(calls));
    const result = await run(queue, blobs, jobFor('6.1.0-57-amd64'));
    expect(result?.record.reason).toBe('worker-error');
    expect(result?.record.message).toContain('is not on worker lacking');
    expect(result?.record.message).toContain("kfarm images sync debian-12 --kernels '6.1.0-57-amd64'");
    // PASSES.max passes, then the 5 attempts (the first of which is the pass that was refused)
    expect(calls.n).toBe(PASSES.max + 5);
  }, 120_000);
});
