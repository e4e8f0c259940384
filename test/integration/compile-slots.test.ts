import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOptions } from '../../src/config/build-options.js';
import { driverScript } from '../../src/dkms/driver-script.js';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import type { IsolatedOutcome, IsolatedRun } from '../../src/executor/runtime.js';
import { LABEL_KERNELS, imageRef } from '../../src/images/catalog.js';
import { BlobStore } from '../../src/queue/blob-store.js';
import type { JobPayload } from '../../src/job/job-payload.js';
import { startPrivateRedis, type PrivateRedis } from '../../src/queue/private-redis.js';
import { closeConnection, connectChecked } from '../../src/queue/redis-connection.js';
import { packSource, type SourceArchive } from '../../src/source/source-archive.js';
import { buildProcessor } from '../../src/worker/build-worker.js';
import { example, tempDir } from '../helpers/kfarm-cli.js';

/**
 * With compile slots, a job beyond them gets its container created and started while the
 * others compile, and compiles when a slot frees: against the real engine, with real builds.
 */
const logger = pino({ level: 'silent' });
const runtime = new DockerRuntime();
const outcomes: IsolatedOutcome[] = [];
const spy = Object.assign(Object.create(runtime) as DockerRuntime, {
  runIsolated: async (run: IsolatedRun) => {
    const outcome = await runtime.runIsolated(run);
    outcomes.push(outcome);
    return outcome;
  },
});
let server: PrivateRedis;
let redis: Redis;
let blobs: BlobStore;
let source: SourceArchive;
let image: { id: string; kernel: string };

beforeAll(async () => {
  const base = await runtime.inspectImage(imageRef('debian-12'));
  if (!base) throw new Error(`${imageRef('debian-12')} is missing: run \`bash scripts/setup.sh\``);
  const kernel = (base.labels[LABEL_KERNELS] ?? '').split(/\s+/).find((k) => k.startsWith('6.1.'));
  if (!kernel) throw new Error(`${imageRef('debian-12')} holds no 6.1 kernel`);
  image = { id: base.id, kernel };
  server = await startPrivateRedis(await tempDir('compile-slots'), logger);
  redis = await connectChecked(server.target);
  blobs = new BlobStore(redis, `test-${randomUUID().slice(0, 8)}`);
  source = await packSource(example('hello'));
  await blobs.put(source.tar);
}, 60_000);

afterAll(async () => {
  if (redis) closeConnection(redis);
  await server?.stop();
});

function payload(buildId: string): JobPayload {
  return {
    schemaVersion: 1,
    sourceSha256: source.sha256,
    kernel: image.kernel,
    arch: 'x86_64',
    image: 'debian-12',
    imageRef: imageRef('debian-12'),
    imageId: image.id,
    driverSha256: driverScript().sha256,
    options: buildOptions({}),
    buildId,
  };
}
const job = () => ({ id: randomUUID().replace(/-/g, ''), attempt: 1, progress: async () => undefined });

describe('compile slots', () => {
  it('one slot, two jobs: the second container is ready while the first compiles, then builds; both built, none left', async () => {
    outcomes.length = 0;
    const buildId = `test-slots-${randomUUID()}`;
    const process = buildProcessor({ runtime: spy, blobs, logger, hostname: 'test-host', signal: new AbortController().signal, compileSlots: 1 });
    const records = await Promise.all([process(payload(buildId), job()), process(payload(buildId), job())]);
    expect(records.map((r) => r.verdict)).toEqual(['built', 'built']);
    // one of them waited, started and holding no input, for the other's compile
    const waits = outcomes.map((o) => o.phases?.ready ?? 0).sort((a, b) => a - b);
    expect(waits[0]).toBeLessThan(200);
    expect(waits[1]).toBeGreaterThan(300);
    // the wait is not the build's time
    expect(Math.max(...records.map((r) => r.durationMs))).toBeLessThan(Math.max(...outcomes.map((o) => (o.phases?.run ?? 0) + 2000)));
    expect(await runtime.listContainers({ 'kfarm.build': buildId })).toEqual([]);
  }, 180_000);

  it('a container waiting for its slot is killed and removed by an abort; the job is interrupted', async () => {
    outcomes.length = 0;
    const buildId = `test-slots-abort-${randomUUID()}`;
    const abort = new AbortController();
    const process = buildProcessor({ runtime: spy, blobs, logger, hostname: 'test-host', signal: abort.signal, compileSlots: 1 });
    const first = process(payload(buildId), job());
    const second = process(payload(buildId), job());
    // once both containers exist, one compiling and one waiting, stop the worker
    for (let i = 0; i < 100 && (await runtime.listContainers({ 'kfarm.build': buildId })).length < 2; i++) await new Promise((r) => setTimeout(r, 100));
    abort.abort();
    const settled = await Promise.allSettled([first, second]);
    for (const s of settled) {
      expect(s.status).toBe('rejected');
      expect(isKfarmError((s as PromiseRejectedResult).reason, 'INTERRUPTED')).toBe(true);
    }
    expect(await runtime.listContainers({ 'kfarm.build': buildId })).toEqual([]);
  }, 180_000);
});
