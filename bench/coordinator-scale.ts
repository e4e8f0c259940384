/**
 * Benchmark: the coordinator and the queue at scale, builds taken out.
 *
 *   npm run build && npm run bench:scale -- [--jobs 10000] [--concurrency 50] [--time-box 600]
 *
 * N (module, kernel) jobs (100 sources x N/100 kernels) through the real queue
 * (src/queue/build-queue.ts BuildQueue.submit, waitAll, startBuildWorker) against a real
 * redis-server of its own, with a no-op build step: a processor that returns a valid record at
 * once (this benchmark only). Prints the enqueue rate, the completion rate, this process's
 * peak RSS (coordinator and in-process workers, as in local mode) and Redis used_memory per
 * job. Time-boxed: past --time-box seconds it prints what it has. Not a test.
 */
import { createHash, randomBytes } from 'node:crypto';
import { startBenchRedis, usedMemory } from './lib/bench-redis.js';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildOptions } from '../src/config/build-options.js';
import { rootLogger } from '../src/logging/logger.js';
import { BuildQueue, startBuildWorker, type Processor } from '../src/queue/build-queue.js';
import type { JobPayload } from '../src/job/job-payload.js';
import { recordForPayload } from '../test/helpers/kernel-record.js';
import { jobPriority } from '../src/queue/job-priority.js';
import { flag } from './lib/stats.js';

const args = process.argv.slice(2);
const jobs = Number(flag(args, '--jobs', '10000'));
const concurrency = Number(flag(args, '--concurrency', '50'));
const timeBoxMs = Number(flag(args, '--time-box', '600')) * 1000;
const say = (line: string) => process.stderr.write(`[scale] ${line}\n`);
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const MiB = 1024 * 1024;

/** a valid record for the payload, as a worker would return for a built module with no output */
const noopBuild: Processor = async (payload) => {
  return recordForPayload(payload, {
    log: { sha256: sha(`log ${payload.kernel} ${payload.sourceSha256}`), size: 0 },
    worker: 'bench',
    attempt: 1,
    finishedAt: new Date().toISOString(),
  });
};

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kfarm-bench-scale-'));
  const redis = await startBenchRedis(dir);
  const { socket } = redis;
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 200);
  try {
    const target = { socket };
    const key = randomBytes(32);
    const name = `bench-scale-${process.pid}`;
    const queue = new BuildQueue(target, name, key);
    await queue.ready();
    const memBefore = await usedMemory(queue.redis);
    const worker = await startBuildWorker(target, name, concurrency, noopBuild, { key, logger: rootLogger });
    const options = buildOptions({});
    const modules = 100;
    const kernels = Math.ceil(jobs / modules);
    const payloads: JobPayload[] = [];
    for (let i = 0; i < jobs; i++) {
      const m = i % modules;
      const k = Math.floor(i / modules);
      payloads.push({
        schemaVersion: 1,
        sourceSha256: sha(`source ${m}`),
        kernel: `6.1.0-${k}-amd64`,
        arch: 'x86_64',
        image: 'debian-12',
        imageRef: 'kfarm/debian-12:bench',
        imageId: `sha256:${sha('image')}`,
        driverSha256: sha('driver'),
        options,
        buildId: name,
      });
    }
    say(`${jobs} jobs (${modules} modules x ${kernels} kernels), worker concurrency ${concurrency}, time box ${timeBoxMs / 1000} s`);
    const t0 = performance.now();
    const deadline = t0 + timeBoxMs;
    const ids: string[] = [];
    let next = 0;
    const submitter = async () => {
      while (next < payloads.length && performance.now() < deadline) {
        const p = payloads[next++] as JobPayload;
        // with a priority, as `kfarm build` queues them (longest first): BullMQ's prioritized set is O(log n) per add
        ids.push((await queue.submit(p, async () => true, jobPriority(1 + (next % 24)))).jobId);
        if (ids.length % 1000 === 0) say(`enqueued ${ids.length} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      }
    };
    await Promise.all(Array.from({ length: 8 }, submitter));
    const enqueueS = (performance.now() - t0) / 1000;
    let done = 0;
    let failed = 0;
    const waited = queue.waitAll(
      ids,
      () => undefined,
      async (o) => {
        if ('record' in o) done++;
        else failed++;
        if ((done + failed) % 1000 === 0) say(`finished ${done + failed} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      },
    );
    const boxed = await Promise.race([waited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), Math.max(0, deadline - performance.now())).unref())]);
    const allS = (performance.now() - t0) / 1000;
    const memAfter = await usedMemory(queue.redis);
    peakRss = Math.max(peakRss, process.memoryUsage().rss, process.resourceUsage().maxRSS * 1024);
    console.log(
      `coordinator scale: ${jobs} jobs through BullMQ + redis-server, no-op builds, worker concurrency ${concurrency}${boxed ? '' : ` (TIME BOX of ${timeBoxMs / 1000} s hit: partial)`}`,
    );
    console.log(`  enqueue      ${ids.length} jobs in ${enqueueS.toFixed(1)} s = ${(ids.length / enqueueS).toFixed(0)} jobs/s`);
    console.log(`  completion   ${done} built, ${failed} failed in ${allS.toFixed(1)} s from the first enqueue = ${(done / allS).toFixed(0)} jobs/s`);
    console.log(
      `  peak RSS     ${(peakRss / MiB).toFixed(0)} MiB (coordinator + in-process worker); target < 300 MB: ${peakRss / 1e6 < 300 ? 'met' : `missed by ${(peakRss / 1e6 - 300).toFixed(0)} MB`}`,
    );
    console.log(
      `  Redis        used_memory ${(memBefore / MiB).toFixed(1)} -> ${(memAfter / MiB).toFixed(1)} MiB = ${((memAfter - memBefore) / Math.max(1, ids.length)).toFixed(0)} bytes per job`,
    );
    await worker.close(2000);
    await queue.close();
  } finally {
    clearInterval(sampler);
    await redis.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
