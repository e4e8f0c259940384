import { randomBytes } from 'node:crypto';
import { Worker } from 'bullmq';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOptions } from '../../src/config/build-options.js';
import { readEnv } from '../../src/config/env.js';
import type { BuildDeps, BuildEvent } from '../../src/coordinator/build-types.js';
import type { FarmSession } from '../../src/coordinator/farm-session.js';
import { runJobs } from '../../src/coordinator/run-jobs.js';
import { BLOB_PREFIX, BlobStore } from '../../src/queue/blob-store.js';
import { BuildQueue, startBuildWorker, type BuildWorker, type Processor } from '../../src/queue/build-queue.js';
import type { JobPayload, KernelRecord } from '../../src/job/job-payload.js';
import { payloadFor } from '../../src/coordinator/build.js';
import { startPrivateRedis, type PrivateRedis } from '../../src/queue/private-redis.js';
import { tempDir } from '../helpers/kfarm-cli.js';

/**
 * The coordinator never uses a fresh result it cannot trust: one without the farm key's seal
 * (a worker without the key answered) or one that answers another job. Each is built again
 * once, and the warnings say so. Real Redis and BullMQ, workers in process, no Docker.
 */
const logger = pino({ level: 'silent' });
const key = randomBytes(32);
let redis: PrivateRedis;
let queue: BuildQueue;
let blobs: BlobStore;
const closers: Array<() => Promise<void>> = [];

const jobFor = (kernel: string): JobPayload =>
  payloadFor(
    { sha256: randomBytes(32).toString('hex') },
    { kernel, arch: 'x86_64', image: 'debian-12', imageRef: 'kfarm/debian-12:latest', imageId: `sha256:${'cd'.repeat(32)}` },
    buildOptions({}),
    'record-trust',
  );

async function recordFor(payload: JobPayload, worker: string, kernel = payload.kernel): Promise<KernelRecord> {
  return {
    schemaVersion: 1,
    kernel,
    arch: payload.arch,
    image: payload.image,
    verdict: 'built',
    packageName: 'hello',
    packageVersion: '1.0.0',
    modules: [
      { builtName: 'hello', destName: 'hello', destLocation: '/kernel/extra', installLocation: '/updates/dkms', file: await blobs.put(Buffer.from(`module from ${worker}`)) },
    ],
    log: await blobs.put(Buffer.from(`log from ${worker}\n`)),
    logTruncated: false,
    durationMs: 1,
    worker,
    finishedAt: new Date().toISOString(),
    cacheable: true,
  };
}

async function run(payload: JobPayload) {
  const session: FarmSession = { queue, blobs, distributed: false, where: 'test', abandon: () => undefined, close: async () => undefined };
  const events: BuildEvent[] = [];
  const deps: BuildDeps = { env: readEnv({}), runtime: undefined as never, logger, signal: new AbortController().signal, onEvent: (e) => events.push(e) };
  const { results, warnings } = await runJobs({ access: session, payloads: [payload], noCache: false, deps, keepSource: async () => undefined, fatal: () => undefined });
  return { result: results[0], warnings, printed: events.filter((e) => e.type === 'warning').map((e) => (e as { text: string }).text) };
}

beforeAll(async () => {
  redis = await startPrivateRedis(await tempDir('record-trust-state'), logger);
});

afterAll(async () => {
  for (const close of closers) await close().catch(() => undefined);
  await queue?.close();
  await redis?.stop();
});

describe('fresh results the coordinator cannot trust', () => {
  it('a completion without a valid seal (a worker without the farm key) is built again once, and the report says so', async () => {
    const name = `test-rt-seal-${process.pid}`;
    queue = new BuildQueue(redis.target, name, key);
    await queue.ready();
    blobs = new BlobStore(queue.redis, BLOB_PREFIX);
    const payload = jobFor('6.1.0-56-amd64');
    let honest: BuildWorker | undefined;
    const honestly: Processor = async (p) => recordFor(p, 'honest');
    // The keyless worker answers first, then leaves; the honest one takes the rebuild.
    const rogueConnection = queue.redis.duplicate();
    const rogue: Worker = new Worker(
      name,
      async () => {
        // closing with its one job running: it takes no other
        const closed = rogue.close();
        void closed.then(async () => {
          rogueConnection.disconnect();
          honest = await startBuildWorker(redis.target, name, 1, honestly, { key, logger });
          closers.push(() => honest?.close() ?? Promise.resolve());
        });
        return { record: await recordFor(payload, 'mallory'), seal: randomBytes(32).toString('hex') };
      },
      { connection: rogueConnection },
    );
    const { result, warnings, printed } = await run(payload);
    const warning = '6.1.0-56-amd64: a result in Redis failed its integrity check and was built again';
    expect(warnings).toEqual([warning]);
    expect(printed).toEqual([warning]);
    expect(result?.record.worker).toBe('honest');
    expect(result?.record.verdict).toBe('built');
    expect(result?.files.get(result.record.log.sha256)?.toString()).toBe('log from honest\n');
  }, 60_000);

  it('a sealed record that answers another job (another kernel) is built again once, and the report says so', async () => {
    const name = `test-rt-other-${process.pid}`;
    await queue.close();
    queue = new BuildQueue(redis.target, name, key);
    await queue.ready();
    blobs = new BlobStore(queue.redis, BLOB_PREFIX);
    const payload = jobFor('6.1.0-57-amd64');
    let calls = 0;
    const confused: Processor = async (p) => (++calls === 1 ? recordFor(p, 'confused', '6.12.117+deb12-amd64') : recordFor(p, 'confused'));
    const worker = await startBuildWorker(redis.target, name, 1, confused, { key, logger });
    closers.push(() => worker.close());
    const { result, warnings } = await run(payload);
    expect(warnings).toEqual(['6.1.0-57-amd64: a result in Redis answered another job and was built again']);
    expect(calls).toBe(2);
    expect(result?.record.kernel).toBe('6.1.0-57-amd64');
    expect(result?.record.verdict).toBe('built');
  }, 60_000);
});
