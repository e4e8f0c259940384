import { randomUUID } from 'node:crypto';
import { execa } from 'execa';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOptions } from '../../src/config/build-options.js';
import { driverScript } from '../../src/dkms/driver-script.js';
import { KfarmError } from '../../src/errors/kfarm-error.js';
import { packTar } from '../../src/executor/archive.js';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { LABEL_KERNELS, imageRef } from '../../src/images/catalog.js';
import { BlobStore } from '../../src/queue/blob-store.js';
import type { JobPayload } from '../../src/job/job-payload.js';
import { startPrivateRedis, type PrivateRedis } from '../../src/queue/private-redis.js';
import { closeConnection, connectChecked } from '../../src/queue/redis-connection.js';
import { packSource, type SourceArchive } from '../../src/source/source-archive.js';
import { buildProcessor } from '../../src/worker/build-worker.js';
import { example, tempDir } from '../helpers/kfarm-cli.js';

/**
 * A worker builds only with the very image the job names (its id is part of the job's key):
 * a worker whose `kfarm/debian-12` is another build refuses the job, runs nothing and stores
 * nothing. Against the real engine, with a second image that differs by one label.
 */
const logger = pino({ level: 'silent' });
const runtime = new DockerRuntime();
/** images each build container was created from, in order */
const runs: string[] = [];
const realRunIsolated = runtime.runIsolated.bind(runtime);
runtime.runIsolated = (run) => {
  runs.push(run.image);
  return realRunIsolated(run);
};

const otherTag = `kfarm-test/debian-12-other:${randomUUID().slice(0, 8)}`;
let server: PrivateRedis;
let redis: Redis;
let blobs: BlobStore;
let prefix: string;
let source: SourceArchive;
let farmImage: { id: string; kernel: string };
let otherImageId: string;

beforeAll(async () => {
  const base = await runtime.inspectImage(imageRef('debian-12'));
  if (!base) throw new Error(`${imageRef('debian-12')} is missing: run \`bash scripts/setup.sh\``);
  const kernel = (base.labels[LABEL_KERNELS] ?? '').split(/\s+/).find((k) => k.startsWith('6.1.'));
  if (!kernel) throw new Error(`${imageRef('debian-12')} holds no 6.1 kernel`);
  farmImage = { id: base.id, kernel };
  // Another build of "the same" image: what a worker that built its own would hold.
  const dockerfile = Buffer.from(`FROM ${imageRef('debian-12')}\nLABEL kfarm.test.other-build="${otherTag}"\n`);
  await runtime.buildImage({
    context: await packTar([{ path: 'Dockerfile', type: 'file', mode: 0o644, data: dockerfile }]),
    tag: otherTag,
    buildArgs: {},
    labels: {},
    onLine: () => undefined,
  });
  const other = await runtime.inspectImage(otherTag);
  if (!other) throw new Error(`the build of ${otherTag} left no image`);
  otherImageId = other.id;

  server = await startPrivateRedis(await tempDir('worker-image'), logger);
  redis = await connectChecked(server.target);
  prefix = `test-${randomUUID().slice(0, 8)}`;
  blobs = new BlobStore(redis, prefix);
  source = await packSource(example('hello'));
  await blobs.put(source.tar);
}, 300_000);

afterAll(async () => {
  if (redis) closeConnection(redis);
  await server?.stop();
  await execa('docker', ['rmi', '--force', otherTag], { reject: false });
});

function payload(imageRef: string, imageId: string): JobPayload {
  return {
    schemaVersion: 1,
    sourceSha256: source.sha256,
    kernel: farmImage.kernel,
    arch: 'x86_64',
    image: 'debian-12',
    imageRef,
    imageId,
    driverSha256: driverScript().sha256,
    options: buildOptions({ timeoutSec: 600 }),
    buildId: `worker-image-${randomUUID().slice(0, 8)}`,
  };
}

const processor = () => buildProcessor({ runtime, blobs, logger, hostname: 'image-test', signal: new AbortController().signal });
const job = { id: 'image-test-job', attempt: 1, progress: async () => undefined };
const storedBlobs = async () => (await redis.keys(`${prefix}:blob:*`)).length;

describe('the image a worker builds with', () => {
  it('is refused when the tag on this worker is another build than the job asks for: no container, nothing stored', async () => {
    expect(otherImageId).not.toBe(farmImage.id);
    const before = await storedBlobs();
    const containersBefore = runs.length;
    const err = await processor()(payload(otherTag, farmImage.id), job).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KfarmError);
    const mismatch = err as KfarmError;
    expect(mismatch.code).toBe('IMAGE_MISMATCH');
    expect(mismatch.context).toMatchObject({ image: otherTag, worker: 'image-test', wanted: farmImage.id, found: otherImageId });
    expect(mismatch.hint).toMatch(/retried/);
    expect(runs.length, 'no build container may start').toBe(containersBefore);
    expect(await storedBlobs(), 'nothing may be stored').toBe(before);
    expect(await runtime.listContainers({ 'kfarm.host': 'image-test' })).toEqual([]);
  });

  it('builds with matching ids, running the image by its id', async () => {
    const record = await processor()(payload(otherTag, otherImageId), job);
    expect(record.verdict).toBe('built');
    expect(record.kernel).toBe(farmImage.kernel);
    expect(record.modules.map((m) => m.file?.size ?? 0).every((size) => size > 0)).toBe(true);
    expect(runs.at(-1), 'the container is created from the checked id, not the tag').toBe(otherImageId);
  }, 600_000);
});
