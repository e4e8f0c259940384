import { readdir, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { closeConnection, connectChecked } from '../../src/queue/redis-connection.js';
import type { KernelRecord } from '../../src/job/job-payload.js';
import type { BuildReport } from '../../src/report/report.js';
import { LABEL_HOST, LABEL_PID } from '../../src/worker/build-worker.js';
import { example, isolatedEnv, kfarmProcess, tempDir } from '../helpers/kfarm-cli.js';

/** The store's entries (job key -> record), as a rerun would find them. */
async function storedRecords(stateDir: string): Promise<Map<string, KernelRecord>> {
  const root = path.join(stateDir, 'results', 'entries');
  const found = new Map<string, KernelRecord>();
  for (const fan of await readdir(root).catch(() => [] as string[])) {
    for (const name of await readdir(path.join(root, fan)).catch(() => [] as string[])) {
      const text = await readFile(path.join(root, fan, name), 'utf8').catch(() => undefined);
      // a file is renamed into place whole (result-store.ts): what is there parses
      if (text !== undefined) found.set(name, (JSON.parse(text) as { record: KernelRecord }).record);
    }
  }
  return found;
}

/**
 * kill -9 of `kfarm build` (the coordinator and its in-process workers, one process): each
 * result was kept as it arrived, so the rerun builds only what had not finished, and it does
 * not wait for the job the dead process was running (its lock would hold it 15-30 s).
 */
describe('kfarm build killed with SIGKILL, then run again', () => {
  const runtime = new DockerRuntime();
  let stateDir = '';

  afterAll(async () => {
    // Only when the test failed is the private Redis still up: stop it.
    const redis = await connectChecked({ socket: path.join(stateDir, 'redis', 'redis.sock') }, 500).catch(() => undefined);
    if (redis) {
      await Promise.race([redis.call('SHUTDOWN', 'NOSAVE').catch(() => undefined), sleep(2000)]);
      closeConnection(redis);
    }
  });

  it('keeps what finished before the kill, rebuilds only the rest, and starts it at once', async () => {
    const env = await isolatedEnv('crash');
    stateDir = env.KFARM_STATE_DIR as string;
    const kernels = (env.KFARM_KERNELS as string).split(',');
    expect(kernels.length).toBeGreaterThanOrEqual(3);
    const out = await tempDir('crash-out');
    const args = ['build', example('hello'), '--out', out];

    // one kernel at a time: when the first result is on disk, the others are running or queued
    const first = kfarmProcess([...args, '--concurrency', '1'], env);
    const deadline = Date.now() + 600_000;
    while ((await storedRecords(stateDir)).size === 0) {
      if (first.exitCode !== undefined && first.exitCode !== null) throw new Error(`the build ended before any result was stored: ${String(first.exitCode)}`);
      if (Date.now() > deadline) throw new Error('no result stored within 10 minutes');
      await sleep(50);
    }
    const pid = first.pid as number;
    first.kill('SIGKILL');
    const killed = await first;
    expect(killed.signal).toBe('SIGKILL');
    const kept = await storedRecords(stateDir);
    // killed mid-run: some kernels had not finished (a store written only at the end has them all or none)
    expect(kept.size).toBeGreaterThan(0);
    expect(kept.size).toBeLessThan(kernels.length);
    await expect(stat(path.join(out, 'report.json'))).rejects.toThrow();
    const keptKernels = [...kept.values()].map((r) => r.kernel).sort();

    // Every kernel at once in the rerun, so none queues behind another: a kernel that starts
    // late waited for something else (the dead run's job).
    const second = kfarmProcess([...args, '--concurrency', String(kernels.length)], env);
    const rerun = await second;
    expect(rerun.exitCode, String(rerun.stderr)).toBe(0);
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
    expect(report.kernels.map((k) => k.kernel).sort()).toEqual([...kernels].sort());
    expect(report.kernels.every((k) => k.verdict === 'built')).toBe(true);
    // what finished before the kill is a cache hit, the rest was built
    expect(
      report.kernels
        .filter((k) => k.cached)
        .map((k) => k.kernel)
        .sort(),
      String(rerun.stderr),
    ).toEqual(keptKernels);
    expect(report.kernels.filter((k) => !k.cached).length).toBe(kernels.length - kept.size);

    // each kernel built by the rerun started within seconds of it (BullMQ's stall check would
    // give the dead run's job back only 15-30 s in); start = finished - duration, from the store
    const rerunStart = Date.parse(report.startedAt);
    const after = await storedRecords(stateDir);
    const rebuilt = [...after.values()].filter((r) => !keptKernels.includes(r.kernel));
    expect(rebuilt.map((r) => r.kernel).sort()).toEqual(kernels.filter((k) => !keptKernels.includes(k)).sort());
    const waits = rebuilt.map((r) => ({ kernel: r.kernel, waitedMs: Date.parse(r.finishedAt) - r.durationMs - rerunStart }));
    console.log('rerun: each rebuilt kernel started this long after the rerun did', waits, 'run', report.durationMs, 'ms');
    for (const w of waits) expect(w.waitedMs, w.kernel).toBeLessThan(10_000);

    // the dead run's container was removed (by the rerun), and the rerun left none
    const owners = [String(pid), String(second.pid)];
    const left = (await runtime.listContainers({ [LABEL_HOST]: os.hostname() })).filter((c) => owners.includes(c.labels[LABEL_PID] ?? ''));
    expect(left).toEqual([]);
    // the rerun was the last live build: it stopped the private Redis, though the dead run's lease had 30 s to go
    await expect(stat(path.join(stateDir, 'redis', 'redis.sock'))).rejects.toThrow();
  }, 1_200_000);
});
