import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { listKfarmImages } from '../../src/images/catalog.js';
import type { BuildReport } from '../../src/report/report.js';
import { example, fixture, isolatedEnv, kfarm, kfarmProcess, tempDir } from '../helpers/kfarm-cli.js';

/**
 * Distributed mode: a real redis-server on loopback, `kfarm build` with REDIS_URL only
 * enqueues and waits, a separate `kfarm worker` process does the builds.
 */
const port = 20000 + (process.pid % 10000);
const REDIS_URL = `redis://127.0.0.1:${port}`;
let redis: ReturnType<typeof execa>;
/** the farm key every worker and coordinator of a distributed farm shares */
let KFARM_FARM_KEY_FILE: string;

async function startRedis(): Promise<void> {
  redis = execa('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { reject: false });
  for (let i = 0; i < 50; i++) {
    const ping = await execa('redis-cli', ['-p', String(port), 'ping'], { reject: false });
    if (ping.stdout === 'PONG') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('redis-server did not start');
}

/** Resolves when the process prints a line matching `pattern` on stderr (or fails after 60 s). */
async function waitForLine(proc: ReturnType<typeof kfarmProcess>, pattern: RegExp): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} in 60 s; stderr so far:\n${seen}`)), 60_000);
    proc.stderr?.on('data', (chunk: Buffer) => {
      seen += chunk.toString('utf8');
      if (pattern.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

beforeAll(async () => {
  KFARM_FARM_KEY_FILE = path.join(await tempDir('dist-key'), 'farm.key');
  await writeFile(KFARM_FARM_KEY_FILE, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  await startRedis();
});

afterAll(async () => {
  redis.kill('SIGTERM');
  await redis;
});

describe('distributed mode', () => {
  it('kfarm build with REDIS_URL is served by a separate kfarm worker process; the coordinator needs no Docker', async () => {
    const env = { ...(await isolatedEnv('dist')), REDIS_URL, KFARM_FARM_KEY_FILE, KFARM_HOSTNAME: 'worker-a' };
    const worker = kfarmProcess(['worker', '--concurrency', '2'], env);
    try {
      await waitForLine(worker, /waiting for builds/);
      const out = await tempDir('dist-out');
      // No engine where the coordinator runs: it learns the kernels from the worker's advert.
      const noDocker = { DOCKER_HOST: 'unix:///nonexistent/docker.sock' };
      const kernels = await kfarm(['kernels'], { ...env, ...noDocker });
      expect(kernels.exitCode, kernels.stderr).toBe(0);
      expect(kernels.stdout).toMatch(/6\.1\.0-\d+-amd64\s+x86_64\s+debian-12/);
      const result = await kfarm(['build', example('hello'), '--out', out], { ...env, ...noDocker, KFARM_HOSTNAME: 'coordinator' });
      expect(result.exitCode, result.stderr).toBe(0);
      const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
      expect(report.kernels.length).toBeGreaterThanOrEqual(2);
      for (const k of report.kernels) {
        expect(k.verdict).toBe('built');
        expect(k.worker).toBe('worker-a');
      }
    } finally {
      worker.kill('SIGTERM');
      const ended = await worker;
      expect(ended.exitCode).toBe(0);
    }
  });

  it('with REDIS_URL, no worker and no local Docker, kfarm build says to start a worker: exit 3', async () => {
    const env = { ...(await isolatedEnv('dist-none')), REDIS_URL, KFARM_FARM_KEY_FILE, DOCKER_HOST: 'unix:///nonexistent/docker.sock' };
    const result = await kfarm(['build', example('hello'), '--out', await tempDir('dist-none-out')], env);
    expect(result.exitCode, result.stderr).toBe(3);
    expect(result.stderr).toContain('no kfarm worker is connected');
    expect(result.stderr).toContain('kfarm worker');
  });

  it('a worker keeps serving after Redis restarts', async () => {
    const env = { ...(await isolatedEnv('dist-restart')), REDIS_URL, KFARM_FARM_KEY_FILE, KFARM_HOSTNAME: 'steady' };
    const worker = kfarmProcess(['worker', '--concurrency', '2'], env);
    try {
      await new Promise((r) => setTimeout(r, 2000));
      redis.kill('SIGTERM');
      await redis;
      await startRedis();
      const out = await tempDir('dist-restart-out');
      const result = await kfarm(['build', example('hello'), '--out', out], { ...env, KFARM_HOSTNAME: 'coordinator' });
      expect(result.exitCode, result.stderr).toBe(0);
      const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
      expect(report.kernels.every((k) => k.verdict === 'built' && k.worker === 'steady')).toBe(true);
    } finally {
      worker.kill('SIGTERM');
      await worker;
    }
  });

  it('a Redis restart that loses every job mid-build: the coordinator queues them again and the build finishes', async () => {
    const env = { ...(await isolatedEnv('dist-redis-loss')), REDIS_URL, KFARM_FARM_KEY_FILE, KFARM_HOSTNAME: 'loser' };
    const runtime = new DockerRuntime();
    const worker = kfarmProcess(['worker', '--concurrency', '3'], env);
    try {
      await waitForLine(worker, /waiting for builds/);
      const out = await tempDir('dist-redis-loss-out');
      // 6.12 sleeps 8 s in its build: Redis goes away while it runs.
      const build = kfarm(['build', fixture('slow-on-612'), '--out', out], { ...env, KFARM_HOSTNAME: 'coordinator' });
      let running = false;
      for (let i = 0; i < 240 && !running; i++) {
        running = (await runtime.listContainers({ 'kfarm.host': 'loser', 'kfarm.kernel': '' })).some((c) => c.running && c.labels['kfarm.kernel']?.startsWith('6.12.'));
        if (!running) await new Promise((r) => setTimeout(r, 250));
      }
      expect(running).toBe(true);
      redis.kill('SIGTERM'); // no persistence: every job, blob and advert is gone
      await redis;
      await startRedis();
      const result = await build;
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stderr).toContain('vanished from Redis');
      const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
      expect(report.kernels.every((k) => k.verdict === 'built')).toBe(true);
    } finally {
      worker.kill('SIGTERM');
      await worker;
    }
  }, 240_000);

  it('a worker stopped with SIGTERM mid-build removes its container and requeues the job at once; another worker finishes it', async () => {
    const env = { ...(await isolatedEnv('dist-kill')), REDIS_URL, KFARM_FARM_KEY_FILE };
    const first = kfarmProcess(['worker', '--concurrency', '1'], { ...env, KFARM_HOSTNAME: 'doomed' });
    const out = await tempDir('dist-kill-out');
    const runtime = new DockerRuntime();
    // The hanging module keeps the first worker busy until we stop it.
    const build = kfarm(['build', fixture('hangs'), '--out', out, '--timeout', '15', '--kernels', (await listKfarmImages(runtime))[0]?.kernels[0] ?? 'none'], {
      ...env,
      KFARM_HOSTNAME: 'coordinator',
    });
    let seen = false;
    for (let i = 0; i < 200 && !seen; i++) {
      seen = (await runtime.listContainers({ 'kfarm.host': 'doomed' })).length > 0;
      if (!seen) await new Promise((r) => setTimeout(r, 250));
    }
    expect(seen).toBe(true);
    first.kill('SIGTERM');
    await first;
    expect(await runtime.listContainers({ 'kfarm.host': 'doomed' })).toEqual([]);
    const second = kfarmProcess(['worker', '--concurrency', '1'], { ...env, KFARM_HOSTNAME: 'survivor' });
    try {
      // Handed back on SIGTERM, the job starts on the survivor within seconds; left to BullMQ's
      // stall detection it could not before its 30 s lock ran out (15 s at the very least).
      const started = Date.now();
      let picked = false;
      while (!picked && Date.now() - started < 40_000) {
        picked = (await runtime.listContainers({ 'kfarm.host': 'survivor' })).length > 0;
        if (!picked) await new Promise((r) => setTimeout(r, 250));
      }
      expect(picked).toBe(true);
      expect(Date.now() - started).toBeLessThan(10_000);
      const result = await build;
      const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
      // The job went back to the queue and ran to its (timeout) verdict on the second worker.
      expect(report.kernels).toHaveLength(1);
      expect(report.kernels[0]?.worker).toBe('survivor');
      expect(report.kernels[0]?.attempt).toBe(1); // handed back, not failed and retried
      expect(report.kernels[0]?.reason).toBe('timeout');
      expect(result.exitCode).toBe(1);
    } finally {
      second.kill('SIGTERM');
      await second;
    }
    expect(await runtime.listContainers({ 'kfarm.build': '' })).toEqual([]);
  }, 240_000);

  it('a worker killed with SIGKILL: its container ends itself, the next worker on that host removes it, the job finishes', async () => {
    const env = { ...(await isolatedEnv('dist-sigkill')), REDIS_URL, KFARM_FARM_KEY_FILE, KFARM_HOSTNAME: 'crashy' };
    const runtime = new DockerRuntime();
    const first = kfarmProcess(['worker', '--concurrency', '1'], env);
    const out = await tempDir('dist-sigkill-out');
    const kernel = (await listKfarmImages(runtime))[0]?.kernels[0] ?? 'none';
    const build = kfarm(['build', fixture('hangs'), '--out', out, '--timeout', '5', '--kernels', kernel], { ...env, KFARM_HOSTNAME: 'coordinator' });
    const buildContainers = async () => await runtime.listContainers({ 'kfarm.host': 'crashy' });
    let seen = false;
    for (let i = 0; i < 200 && !seen; i++) {
      seen = (await buildContainers()).some((c) => c.running);
      if (!seen) await new Promise((r) => setTimeout(r, 250));
    }
    expect(seen).toBe(true);
    first.kill('SIGKILL');
    await first;
    // Nobody is left to enforce the 5 s timeout; the container's own deadline (5 + 5 s) does.
    const killedAt = Date.now();
    let stillRunning = true;
    while (stillRunning && Date.now() - killedAt < 30_000) {
      stillRunning = (await buildContainers()).some((c) => c.running);
      if (stillRunning) await new Promise((r) => setTimeout(r, 500));
    }
    expect(stillRunning).toBe(false);
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    expect(await buildContainers()).not.toEqual([]); // stopped, not yet removed: its worker is gone
    const second = kfarmProcess(['worker', '--concurrency', '1'], env);
    try {
      // The job comes back through stall detection (its lock lapses within 30 s) and runs again.
      const result = await build;
      expect(result.exitCode, result.stderr).toBe(1);
      const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
      expect(report.kernels[0]?.reason).toBe('timeout');
      // The new worker on host "crashy" removed the container its dead predecessor left.
      expect((await buildContainers()).filter((c) => c.labels['kfarm.pid'] !== String(second.pid))).toEqual([]);
    } finally {
      second.kill('SIGTERM');
      await second;
    }
    expect(await runtime.listContainers({ 'kfarm.host': 'crashy' })).toEqual([]);
  }, 240_000);
});
