import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Queue, Worker } from 'bullmq';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seal } from '../../src/queue/record-seal.js';
import { VerifyQueue } from '../../src/queue/verify-queue.js';
import type { BuildReport } from '../../src/report/report.js';
import { verifyPayloadSchema, verifyQueueName } from '../../src/job/verify-job.js';
import { debian12Kernels, example, fixture, isolatedEnv, kfarm, kfarmProcess, tempDir } from '../helpers/kfarm-cli.js';

/**
 * Boots as queue jobs: a real redis-server, a separate `kfarm worker --verify tcg` process
 * that builds hello and then boots its kernel under TCG for `kfarm verify` (REDIS_URL), and
 * the border: a verify result without the farm key's seal is never used, a verify payload
 * without it is refused by the worker.
 */
const { k61, k61b } = await debian12Kernels();
const port = 20000 + ((process.pid + 4321) % 10000);
const REDIS_URL = `redis://127.0.0.1:${port}`;
let redis: ReturnType<typeof execa>;
let keyFile: string;
let env: Record<string, string>;
let worker: ReturnType<typeof kfarmProcess>;
let workerLog = '';

beforeAll(async () => {
  keyFile = path.join(await tempDir('verify-queue-key'), 'farm.key');
  await writeFile(keyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  redis = execa('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { reject: false });
  for (let i = 0; i < 50; i++) {
    if ((await execa('redis-cli', ['-p', String(port), 'ping'], { reject: false })).stdout === 'PONG') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  env = { ...(await isolatedEnv('verify-queue')), REDIS_URL, KFARM_FARM_KEY_FILE: keyFile, KFARM_HOSTNAME: 'boot-worker' };
  worker = kfarmProcess(['worker', '--concurrency', '1', '--verify', 'tcg'], env);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the worker did not start in 60 s:\n${workerLog}`)), 60_000);
    worker.stderr?.on('data', (chunk: Buffer) => {
      workerLog += chunk.toString('utf8');
      if (/waiting for builds.*boots \(tcg\)/.test(workerLog)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}, 120_000);

afterAll(async () => {
  worker?.kill('SIGTERM');
  await worker;
  redis?.kill('SIGTERM');
  await redis;
});

const key = async () => Buffer.from((await readFile(keyFile, 'utf8')).trim(), 'utf8');

describe('boots through the queue', () => {
  it(`kfarm verify with REDIS_URL: the worker that takes TCG boots boots ${k61} and hello loads (auto routed to TCG: no worker says KVM)`, async () => {
    const out = await tempDir('verify-queue-out');
    const build = await kfarm(['build', example('hello'), '-k', k61, '-o', out], env, 600_000);
    expect(build.exitCode, build.stderr).toBe(0);
    const started = Date.now();
    const run = await kfarm(['verify', out], { ...env, KFARM_HOSTNAME: 'coordinator' }, 900_000);
    expect(run.exitCode, `${run.stderr}\nworker:\n${workerLog}`).toBe(0);
    expect(run.stderr).toMatch(/on the farm's workers/);
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
    const row = report.kernels.find((k) => k.kernel === k61);
    expect(row?.load).toMatchObject({ verdict: 'loaded', accel: 'tcg', log: `logs/load/hello/${k61}.log` });
    expect(row?.load?.bootMs).toBeGreaterThan(0);
    const captured = await readFile(path.join(out, row?.load?.log ?? ''), 'utf8');
    expect(captured).toContain(`Linux version ${k61}`);
    expect(captured).toMatch(/hello: hello from kfarm/);
    console.log(`through the queue (TCG): ${k61} boot ${row?.load?.bootMs} ms, load ${row?.load?.loadMs} ms, kfarm verify ${Date.now() - started} ms`);
  }, 1_200_000);

  it('a verify result that is not sealed with the farm key is refused, and the worker refuses an unsealed verify payload', async () => {
    const farmKey = await key();
    const target = { url: REDIS_URL };
    const queue = new VerifyQueue(target, env.KFARM_QUEUE ?? '', farmKey);
    // a forger on the KVM lane (the real worker takes TCG only): answers with a verdict and a made-up seal
    const forger = new Worker(
      verifyQueueName(env.KFARM_QUEUE ?? '', 'kvm'),
      async () => ({
        result: { schemaVersion: 1, load: { verdict: 'loaded', accel: 'kvm', bootMs: 1, loadMs: 1 }, worker: 'forger' },
        seal: 'ab'.repeat(32),
      }),
      { connection: { host: '127.0.0.1', port } },
    );
    const raw = new Queue(verifyQueueName(env.KFARM_QUEUE ?? '', 'tcg'), { connection: { host: '127.0.0.1', port } });
    try {
      await queue.ready();
      const payload = verifyPayloadSchema.parse({
        schemaVersion: 1,
        kernel: k61,
        arch: 'x86_64',
        release: 'debian-12',
        debianArch: 'amd64',
        modules: [{ sha256: 'a'.repeat(64), size: 1, installLocation: '/updates/dkms', fileName: 'hello.ko' }],
        cmdline: '',
        accel: 'kvm',
        timeoutSec: 60,
        requestId: randomBytes(16).toString('hex'),
        run: queue.run,
      });
      const jobId = await queue.submit(payload, 'kvm');
      const outcome = await queue.wait(jobId, 'kvm');
      expect(outcome).toMatchObject({ error: expect.stringMatching(/integrity check/) });
      expect('result' in outcome).toBe(false);

      // a payload with no valid seal on the TCG lane: the real worker process refuses it, never boots it
      const forged = await raw.add(
        'verify',
        { payload: { ...payload, accel: 'tcg' }, seal: seal(randomBytes(32), 'verify-payload', 'x', payload) },
        { jobId: 'f'.repeat(64), attempts: 1 },
      );
      let state = '';
      for (let i = 0; i < 100 && state !== 'failed' && state !== 'completed'; i++) {
        await new Promise((r) => setTimeout(r, 200));
        state = await forged.getState();
      }
      expect(state).toBe('failed');
      const failed = await raw.getJob('f'.repeat(64));
      expect(failed?.failedReason).toMatch(/integrity check/);
    } finally {
      await forger.close();
      await raw.close();
      await queue.close();
    }
  }, 120_000);
});

/**
 * A coordinator's boots end with it. Before: an interrupted or killed `kfarm verify` left its
 * boot jobs queued and running, and the next run waited behind them (15 minutes and more); an
 * advert of a worker that had just died drew boots to a lane nobody consumed, for ever.
 */
describe('boot jobs of runs that are gone, and lanes nobody serves', () => {
  let helloOut: string;

  const helloRun = async (label: string, extraEnv: Record<string, string> = {}) => {
    const started = Date.now();
    // bounded: before the fix this run waited behind the dead runs' 600 s boots, or for ever on the dead worker's lane
    const run = await kfarm(['verify', helloOut, '--kernels', k61], { ...env, KFARM_HOSTNAME: label, ...extraEnv }, 240_000);
    return { run, ms: Date.now() - started };
  };
  const counts = async () => {
    const tcg = new Queue(verifyQueueName(env.KFARM_QUEUE ?? '', 'tcg'), { connection: { host: '127.0.0.1', port } });
    const kvm = new Queue(verifyQueueName(env.KFARM_QUEUE ?? '', 'kvm'), { connection: { host: '127.0.0.1', port } });
    try {
      const states = ['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'] as const;
      const norm = (c: Record<string, number>) => Object.fromEntries(states.map((st) => [st, c[st] ?? 0])) as Record<(typeof states)[number], number>;
      const [t, k] = [norm(await tcg.getJobCounts(...states)), norm(await kvm.getJobCounts(...states))];
      const failed = [...(await tcg.getFailed()), ...(await kvm.getFailed())].map((j) => j.failedReason);
      return { tcg: t, kvm: k, failed };
    } finally {
      await tcg.close();
      await kvm.close();
    }
  };

  beforeAll(async () => {
    helloOut = await tempDir('verify-queue-hello');
    const build = await kfarm(['build', example('hello'), '-k', k61, '-o', helloOut], env, 600_000);
    expect(build.exitCode, build.stderr).toBe(0);
  }, 700_000);

  it("two coordinators killed with SIGKILL mid-verify (their boots hang for 600 s): the next run boots at once, the dead runs' boots are stopped or dropped, never finished", async () => {
    const hangOut = await tempDir('verify-queue-hang');
    const build = await kfarm(['build', fixture('hangs-on-load'), '-k', `${k61},${k61b}`, '-o', hangOut], env, 600_000);
    expect(build.exitCode, build.stderr).toBe(0);
    // two dead runs of two boots each: more than the worker's boot slots, so some wait and some run
    const dead = [0, 1].map((i) => kfarmProcess(['verify', hangOut, '--accel', 'tcg', '--boot-timeout', '600'], { ...env, KFARM_HOSTNAME: `dead-${i}` }));
    let c = await counts();
    for (let i = 0; i < 600 && !(c.tcg.active >= 1 && c.tcg.active + c.tcg.waiting + c.tcg.prioritized >= 4); i++) {
      await new Promise((r) => setTimeout(r, 200));
      c = await counts();
    }
    expect(c.tcg.active, JSON.stringify(c)).toBeGreaterThanOrEqual(1);
    expect(c.tcg.active + c.tcg.waiting + c.tcg.prioritized, JSON.stringify(c)).toBe(4);
    for (const p of dead) p.kill('SIGKILL');
    await Promise.all(dead);

    const { run, ms } = await helloRun('next-run');
    expect(run.exitCode, `${run.stderr}\nworker:\n${workerLog.slice(-4000)}`).toBe(0);
    const report = JSON.parse(await readFile(path.join(helloOut, 'report.json'), 'utf8')) as BuildReport;
    expect(report.kernels.find((k) => k.kernel === k61)?.load).toMatchObject({ verdict: 'loaded', accel: 'tcg' });
    console.log(`the next run after two killed ones: ${ms} ms (the dead runs' leases lapse within 20 s)`);
    // nothing of the dead runs is left running or queued, nothing of theirs finished: each was stopped or dropped
    let after = await counts();
    for (let i = 0; i < 100 && after.tcg.active + after.tcg.waiting > 0; i++) {
      await new Promise((r) => setTimeout(r, 200));
      after = await counts();
    }
    expect(after.tcg, JSON.stringify(after)).toMatchObject({ waiting: 0, active: 0, delayed: 0, prioritized: 0, completed: 0 });
    // the forged payload of the test above is the one other failed job
    expect(
      after.failed.filter((r) => /the run that queued this boot is gone/.test(r ?? '')),
      JSON.stringify(after),
    ).toHaveLength(4);
  }, 1_200_000);

  it('an advert of a KVM worker that died (still within its TTL) draws no boot to the KVM lane: auto goes to the lane a live worker consumes', async () => {
    const redisClient = new Redis(port, '127.0.0.1');
    // what `kfarm worker --verify kvm,tcg` killed with SIGKILL leaves for up to 60 s: its advert, no connection
    await redisClient.set(
      `kfarm:${env.KFARM_QUEUE ?? ''}:worker:ghost:1`,
      JSON.stringify({
        worker: 'ghost:1',
        hostname: 'ghost',
        pid: 1,
        concurrency: 1,
        images: [],
        verify: ['kvm', 'tcg'],
        seenAt: new Date().toISOString(),
      }),
      'EX',
      300,
    );
    try {
      const { run, ms } = await helloRun('after-ghost');
      expect(run.exitCode, run.stderr).toBe(0);
      const report = JSON.parse(await readFile(path.join(helloOut, 'report.json'), 'utf8')) as BuildReport;
      expect(report.kernels.find((k) => k.kernel === k61)?.load).toMatchObject({ verdict: 'loaded', accel: 'tcg' });
      expect((await counts()).kvm).toMatchObject({ waiting: 0, active: 0 });
      console.log(`with a dead KVM worker's advert: ${ms} ms`);
    } finally {
      await redisClient.del(`kfarm:${env.KFARM_QUEUE ?? ''}:worker:ghost:1`);
      redisClient.disconnect();
    }
  }, 600_000);
});
