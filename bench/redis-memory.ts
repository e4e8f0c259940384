/**
 * Benchmark: Redis memory as builds accumulate, now that results live on disk.
 *
 *   npm run build && node lib/bench/redis-memory.js [--builds 1000] [--module-kib 64]
 *
 * N builds, one job each, every one a new source (nothing cached), through the real path:
 * coordinator/run-jobs.ts runJobs (result store lookup, BuildQueue.submit/waitAll, blobs
 * fetched, record checked, result put in the store on disk) and startBuildWorker with a
 * processor that stands in for the container: it puts a random log (2 KiB) and module
 * (--module-kib) into Redis as a worker does and returns a valid record. A redis-server of its
 * own; INFO memory sampled every 100 builds. Prints used_memory at 100 and at N and their ratio
 * (flat: about 1), and the store's size on disk. Not a test.
 */
import { createHash, randomBytes } from 'node:crypto';
import { startBenchRedis, usedMemory } from './lib/bench-redis.js';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildOptions } from '../src/config/build-options.js';
import { readEnv } from '../src/config/env.js';
import type { BuildDeps } from '../src/coordinator/build-types.js';
import type { FarmSession } from '../src/coordinator/farm-session.js';
import { runJobs } from '../src/coordinator/run-jobs.js';
import type { ContainerRuntime } from '../src/executor/runtime.js';
import { rootLogger } from '../src/logging/logger.js';
import { BLOB_PREFIX, BlobStore } from '../src/queue/blob-store.js';
import { BuildQueue, startBuildWorker, type Processor } from '../src/queue/build-queue.js';
import type { JobPayload } from '../src/job/job-payload.js';
import { builtModule, recordForPayload } from '../test/helpers/kernel-record.js';
import { ResultStore } from '../src/store/result-store.js';
import { formatSize } from '../src/store/size.js';
import { flag } from './lib/stats.js';

const args = process.argv.slice(2);
const builds = Number(flag(args, '--builds', '1000'));
const moduleBytes = Number(flag(args, '--module-kib', '64')) * 1024;
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kfarm-bench-redis-memory-'));
  const redis = await startBenchRedis(dir);
  const { socket } = redis;
  try {
    const target = { socket };
    const key = randomBytes(32);
    const name = `bench-redis-memory-${process.pid}`;
    const queue = new BuildQueue(target, name, key);
    await queue.ready();
    const blobs = new BlobStore(queue.redis, BLOB_PREFIX);
    // the container's part, as a worker does it: blobs into Redis, a record back
    const fakeBuild: Processor = async (payload) => {
      const log = await blobs.put(randomBytes(2048));
      const file = await blobs.put(randomBytes(moduleBytes));
      return recordForPayload(payload, {
        packageName: 'bench',
        packageVersion: '1.0',
        modules: [builtModule('bench', file)],
        log,
        worker: 'bench',
        attempt: 1,
        finishedAt: new Date().toISOString(),
      });
    };
    const worker = await startBuildWorker(target, name, 4, fakeBuild, { key, logger: rootLogger });
    const session: FarmSession = { queue, blobs, distributed: false, where: 'bench', abandon: () => undefined, close: async () => undefined };
    const store = ResultStore.under(dir, 4 * 1024 ** 3);
    const deps: BuildDeps = {
      env: readEnv({ KFARM_STATE_DIR: dir }),
      runtime: {} as ContainerRuntime,
      logger: rootLogger,
      signal: new AbortController().signal,
      onEvent: () => undefined,
    };
    const options = buildOptions({});
    const used = () => usedMemory(queue.redis);
    const samples: Array<{ builds: number; used: number; keys: number }> = [];
    const start = await used();
    const t0 = performance.now();
    for (let b = 1; b <= builds; b++) {
      const payload: JobPayload = {
        schemaVersion: 1,
        sourceSha256: sha(`source ${b} ${name}`),
        kernel: '6.1.0-56-amd64',
        arch: 'x86_64',
        image: 'debian-12',
        imageRef: 'kfarm/debian-12:bench',
        imageId: `sha256:${sha('image')}`,
        driverSha256: sha('driver'),
        options,
        buildId: `${name}-${b}`,
      };
      const { results } = await runJobs({
        access: { session: async () => session, store },
        payloads: [payload],
        noCache: false,
        deps,
        keepSource: async () => undefined,
        fatal: () => undefined,
      });
      if (results[0]?.record.verdict !== 'built') throw new Error(`build ${b} did not come back built`);
      if (b % 100 === 0) {
        samples.push({ builds: b, used: await used(), keys: await queue.redis.dbsize() });
        process.stderr.write(
          `[redis-memory] ${b} builds, used_memory ${(samples.at(-1)!.used / MiB).toFixed(2)} MiB, ${samples.at(-1)!.keys} keys (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`,
        );
      }
    }
    // What stays once the blobs in flight are gone (released 10 s after the coordinator fetched
    // them): the finished jobs' sealed records, kept at most 1 h and at most 20,000.
    await new Promise((r) => setTimeout(r, 12_000));
    const settled = { used: await used(), keys: await queue.redis.dbsize() };
    const first = samples[0];
    const last = samples.at(-1);
    console.log(
      `redis memory: ${builds} builds of one job each (2 KiB log + ${moduleBytes / 1024} KiB module), real queue + result store, in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    console.log(`  used_memory  empty ${(start / MiB).toFixed(2)} MiB`);
    for (const s of samples) console.log(`  used_memory  after ${String(s.builds).padStart(5)} builds: ${(s.used / MiB).toFixed(2)} MiB, ${s.keys} keys`);
    if (first && last) {
      console.log(
        `  ratio        used_memory at ${last.builds} / at ${first.builds} = ${(last.used / first.used).toFixed(2)} (flat is about 1; what ${builds} results would hold in Redis: ${formatSize(builds * (moduleBytes + 2048))})`,
      );
    }
    console.log(
      `  settled      12 s after the last build (the released blobs expired): ${(settled.used / MiB).toFixed(2)} MiB, ${settled.keys} keys = ${Math.round((settled.used - start) / builds)} bytes per build that stay (finished jobs' records, kept at most 1 h and at most 20,000 jobs)`,
    );
    console.log(`  store        ${formatSize(await store.size())} on disk in ${store.dir}`);
    await worker.close(2000);
    await queue.close();
  } finally {
    await redis.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
