import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Queue, Worker } from 'bullmq';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seal } from '../../src/queue/record-seal.js';
import { VerifyQueue } from '../../src/queue/verify-queue.js';
import type { BuildReport } from '../../src/report/report.js';
import { verifyPayloadSchema, verifyQueueName } from '../../src/verify/verify-job.js';
import { debian12Kernels, example, isolatedEnv, kfarm, kfarmProcess, tempDir } from '../helpers/kfarm-cli.js';

/**
 * Boots as queue jobs: a real redis-server, a separate `kfarm worker --verify tcg` process
 * that builds hello and then boots its kernel under TCG for `kfarm verify` (REDIS_URL), and
 * the border: a verify result without the farm key's seal is never used, a verify payload
 * without it is refused by the worker.
 */
const { k61 } = await debian12Kernels();
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
    const forger = new Worker(verifyQueueName(env.KFARM_QUEUE ?? '', 'kvm'), async () => ({
      result: { schemaVersion: 1, load: { verdict: 'loaded', accel: 'kvm', bootMs: 1, loadMs: 1 }, worker: 'forger' },
      seal: 'ab'.repeat(32),
    }), { connection: { host: '127.0.0.1', port } });
    const raw = new Queue(verifyQueueName(env.KFARM_QUEUE ?? '', 'tcg'), { connection: { host: '127.0.0.1', port } });
    try {
      await queue.ready();
      const payload = verifyPayloadSchema.parse({
        schemaVersion: 1, kernel: k61, arch: 'x86_64', release: 'debian-12', debianArch: 'amd64',
        modules: [{ sha256: 'a'.repeat(64), size: 1, installLocation: '/updates/dkms', fileName: 'hello.ko' }],
        cmdline: '', accel: 'kvm', timeoutSec: 60, requestId: randomBytes(16).toString('hex'),
      });
      const jobId = await queue.submit(payload, 'kvm');
      const outcome = await queue.wait(jobId, 'kvm');
      expect(outcome).toMatchObject({ error: expect.stringMatching(/integrity check/) });
      expect('result' in outcome).toBe(false);

      // a payload with no valid seal on the TCG lane: the real worker process refuses it, never boots it
      const forged = await raw.add('verify', { payload: { ...payload, accel: 'tcg' }, seal: seal(randomBytes(32), 'verify-payload', 'x', payload) }, { jobId: 'f'.repeat(64), attempts: 1 });
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
