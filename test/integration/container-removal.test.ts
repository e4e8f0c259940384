import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOptions } from '../../src/config/build-options.js';
import { driverScript } from '../../src/dkms/driver-script.js';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import type { IsolatedRun } from '../../src/executor/runtime.js';
import { LABEL_KERNELS, imageRef } from '../../src/images/catalog.js';
import { BlobStore } from '../../src/queue/blob-store.js';
import { startPrivateRedis, type PrivateRedis } from '../../src/queue/private-redis.js';
import { closeConnection, connectChecked } from '../../src/queue/redis-connection.js';
import { packSource } from '../../src/source/source-archive.js';
import { buildProcessor } from '../../src/worker/build-worker.js';
import { example, tempDir } from '../helpers/kfarm-cli.js';

/**
 * A build container is removed while the worker unpacks and stores its output (one step less
 * in series per job), yet no container outlives the job: against the real engine.
 */
const logger = pino({ level: 'silent' });
const runtime = new DockerRuntime();
let image: { id: string; kernel: string };

beforeAll(async () => {
  const base = await runtime.inspectImage(imageRef('debian-12'));
  if (!base) throw new Error(`${imageRef('debian-12')} is missing: run \`bash scripts/setup.sh\``);
  const kernel = (base.labels[LABEL_KERNELS] ?? '').split(/\s+/).find((k) => k.startsWith('6.1.'));
  if (!kernel) throw new Error(`${imageRef('debian-12')} holds no 6.1 kernel`);
  image = { id: base.id, kernel };
});

const mine = () => ({ 'kfarm.test.removal': randomUUID() });
function trivial(labels: Record<string, string>, cmd: string[], extra: Partial<IsolatedRun> = {}): IsolatedRun {
  return {
    image: image.id,
    cmd,
    user: '0:0',
    capAdd: [],
    env: {},
    labels,
    stdin: Buffer.alloc(0),
    outputLimitBytes: 1024 * 1024,
    tmpfs: {},
    limits: { memoryBytes: 256 * 1024 * 1024, pids: 64, cpus: 1 },
    timeoutMs: 30_000,
    onLog: () => undefined,
    ...extra,
  };
}

describe('the removal of a build container', () => {
  it('with deferRemoval, a container that ended on its own is handed back with its removal, and gone once that settles', async () => {
    const labels = mine();
    const outcome = await runtime.runIsolated(trivial(labels, ['true'], { deferRemoval: true }));
    expect(outcome.exitCode).toBe(0);
    expect(outcome.removed).toBeInstanceOf(Promise);
    await outcome.removed;
    expect(await runtime.listContainers(labels)).toEqual([]);
    expect(Object.keys(outcome.phases ?? {})).toEqual(['create', 'attach', 'start', 'run', 'inspect', 'remove']);
  });

  it('a container the runtime killed (timeout) is removed before runIsolated returns, deferRemoval or not', async () => {
    const labels = mine();
    const outcome = await runtime.runIsolated(trivial(labels, ['sleep', '30'], { deferRemoval: true, timeoutMs: 500 }));
    expect(outcome.stoppedBy).toBe('timeout');
    expect(outcome.removed).toBeUndefined();
    expect(await runtime.listContainers(labels)).toEqual([]);
  });

  it('without deferRemoval the container is gone when runIsolated returns', async () => {
    const labels = mine();
    const outcome = await runtime.runIsolated(trivial(labels, ['true']));
    expect(outcome.removed).toBeUndefined();
    expect(await runtime.listContainers(labels)).toEqual([]);
  });

  describe('a whole job', () => {
    let server: PrivateRedis;
    let redis: Redis;

    afterAll(async () => {
      if (redis) closeConnection(redis);
      await server?.stop();
    });

    it('ends only after its container is gone, with its record stored', async () => {
      server = await startPrivateRedis(await tempDir('container-removal'), logger);
      redis = await connectChecked(server.target);
      const blobs = new BlobStore(redis, `test-${randomUUID().slice(0, 8)}`);
      const source = await packSource(example('hello'));
      await blobs.put(source.tar);
      const buildId = `test-removal-${randomUUID()}`;
      // the removal is handed to the worker (deferred), and has settled when the job resolves
      const order: string[] = [];
      const realRun = runtime.runIsolated.bind(runtime);
      const spy = Object.assign(Object.create(runtime) as DockerRuntime, {
        runIsolated: async (run: IsolatedRun) => {
          const outcome = await realRun(run);
          void outcome.removed?.then(() => order.push('removed'));
          return outcome;
        },
      });
      const process = buildProcessor({ runtime: spy, blobs, logger, hostname: 'test-host', signal: new AbortController().signal });
      const record = await process(
        {
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
        },
        { id: randomUUID().replace(/-/g, ''), attempt: 1, progress: async () => undefined },
      );
      expect(record.verdict).toBe('built');
      expect(await blobs.has(record.log.sha256)).toBe(true);
      expect(await runtime.listContainers({ 'kfarm.build': buildId })).toEqual([]);
      expect(order).toEqual(['removed']);
    }, 120_000);
  });
});
