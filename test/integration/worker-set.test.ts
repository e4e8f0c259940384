import { randomBytes, randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { imageRef } from '../../src/images/catalog.js';
import { verifyQueueName, type VerifyLane } from '../../src/job/verify-job.js';
import { processStartTime } from '../../src/process/instance.js';
import { startPrivateRedis, type PrivateRedis } from '../../src/queue/private-redis.js';
import { listWorkerAdverts } from '../../src/queue/worker-registry.js';
import { LABEL_HOST, LABEL_INSTANCE, LABEL_PID } from '../../src/worker/build-worker.js';
import { startWorkerSet, type WorkerSetOptions } from '../../src/worker/worker-set.js';
import { tempDir } from '../helpers/kfarm-cli.js';

/**
 * The one wiring that `kfarm worker` and a local build's FarmSession share: given lanes it
 * starts a verify worker on each, given a concurrency a build worker, asked to it advertises;
 * it reaps what dead kfarm processes left first; close() takes every part away. Real Redis,
 * BullMQ and Docker: what a part that went missing would show, Redis shows (no consumer on a
 * queue, an advert that outlives its worker).
 */
const logger = pino({ level: 'silent' });
const runtime = new DockerRuntime();
const host = `worker-set-${randomUUID().slice(0, 8)}`;
let redis: PrivateRedis;
let client: Redis;
let socket: string;
let stateDir: string;
const queues: Queue[] = [];

beforeAll(async () => {
  stateDir = await tempDir('worker-set-state');
  redis = await startPrivateRedis(stateDir, logger);
  if (!('socket' in redis.target)) throw new Error('the private Redis listens on a unix socket');
  socket = redis.target.socket;
  client = new Redis({ path: socket, maxRetriesPerRequest: null });
});

afterAll(async () => {
  await Promise.all(queues.map((q) => q.close()));
  client?.disconnect();
  await redis?.stop();
  await runtime.removeContainers({ [LABEL_HOST]: host });
});

function options(queueName: string, more: Partial<WorkerSetOptions>): WorkerSetOptions {
  return { target: redis.target, queueName, key: randomBytes(32), runtime, logger, hostname: host, stateDir, signal: new AbortController().signal, concurrency: 1, ...more };
}

/** BullMQ workers consuming `name` now (CLIENT LIST, as BullMQ counts them) */
async function consumers(name: string): Promise<number> {
  const queue = new Queue(name, { connection: { path: socket } });
  queues.push(queue);
  return queue.getWorkersCount();
}

/** what a name's consumers settle at: a closed connection leaves CLIENT LIST a moment later */
async function settled(name: string, want: number): Promise<number> {
  let count = await consumers(name);
  for (let i = 0; i < 50 && count !== want; i++) {
    await new Promise((r) => setTimeout(r, 100));
    count = await consumers(name);
  }
  return count;
}

const lanesServed = async (queueName: string): Promise<Record<VerifyLane, number>> => ({
  kvm: await consumers(verifyQueueName(queueName, 'kvm')),
  tcg: await consumers(verifyQueueName(queueName, 'tcg')),
});

/** a stopped build container whose owner (a kfarm process on this host) is dead */
async function orphan(): Promise<void> {
  const gone = execa('sleep', ['60'], { reject: false });
  const pid = gone.pid ?? 0;
  const start = processStartTime(pid);
  expect(start).toBeDefined();
  gone.kill('SIGKILL');
  await gone;
  await execa('docker', [
    'create',
    '--label',
    `${LABEL_HOST}=${host}`,
    '--label',
    `${LABEL_PID}=${pid}`,
    '--label',
    `${LABEL_INSTANCE}=${pid}:${start}`,
    imageRef('debian-12'),
    'true',
  ]);
}

describe('startWorkerSet', () => {
  it('reaps orphans, starts the build worker, a verify worker on each lane given and the advert; close() takes each away', async () => {
    const queueName = `ws-full-${process.pid}`;
    await orphan();
    expect(await runtime.listContainers({ [LABEL_HOST]: host })).toHaveLength(1);
    const set = await startWorkerSet(options(queueName, { concurrency: 2, verify: { lanes: ['kvm', 'tcg'], concurrency: 1 }, advertise: true }));
    try {
      expect(await runtime.listContainers({ [LABEL_HOST]: host }), "the dead process's container was reaped").toHaveLength(0);
      expect(await consumers(queueName), 'the build worker').toBe(1);
      expect(await lanesServed(queueName), 'a verify worker on each lane').toEqual({ kvm: 1, tcg: 1 });
      const adverts = await listWorkerAdverts(client, queueName);
      expect(adverts.map((a) => ({ worker: a.worker, hostname: a.hostname, concurrency: a.concurrency, verify: a.verify }))).toEqual([
        { worker: `${host}:${process.pid}`, hostname: host, concurrency: 2, verify: ['kvm', 'tcg'] },
      ]);
    } finally {
      await set.close();
    }
    expect(await listWorkerAdverts(client, queueName), 'the advert is withdrawn').toEqual([]);
    expect(await settled(queueName, 0), 'the build worker stopped').toBe(0);
    expect(await settled(verifyQueueName(queueName, 'kvm'), 0), "the KVM lane's worker stopped").toBe(0);
    expect(await settled(verifyQueueName(queueName, 'tcg'), 0), "the TCG lane's worker stopped").toBe(0);
  }, 60_000);

  it('only the lanes given; no build worker at concurrency 0 (a verify-only session); no advert unless asked', async () => {
    const queueName = `ws-parts-${process.pid}`;
    const tcgOnly = await startWorkerSet(options(queueName, { verify: { lanes: ['tcg'], concurrency: 1 } }));
    try {
      expect(await consumers(queueName)).toBe(1);
      expect(await lanesServed(queueName)).toEqual({ kvm: 0, tcg: 1 });
      expect(await listWorkerAdverts(client, queueName), 'a local build advertises nothing').toEqual([]);
    } finally {
      await tcgOnly.close();
    }
    const verifyOnly = await startWorkerSet(options(queueName, { concurrency: 0, verify: { lanes: ['kvm', 'tcg'], concurrency: 2 } }));
    try {
      expect(await settled(queueName, 0), "no build worker: it would take another build's jobs").toBe(0);
      expect(await lanesServed(queueName)).toEqual({ kvm: 1, tcg: 1 });
    } finally {
      await verifyOnly.close();
    }
    const buildOnly = await startWorkerSet(options(queueName, { verify: { lanes: [], concurrency: 1 }, advertise: true }));
    try {
      expect(await consumers(queueName)).toBe(1);
      expect(await settled(verifyQueueName(queueName, 'tcg'), 0)).toBe(0);
      expect((await listWorkerAdverts(client, queueName)).map((a) => a.verify)).toEqual([[]]);
    } finally {
      await buildOnly.close();
    }
  }, 60_000);
});
