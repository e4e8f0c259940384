import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Queue, Worker } from 'bullmq';
import { execa, type ResultPromise } from 'execa';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobKey } from '../../src/job/job-key.js';
import { buildOptions } from '../../src/config/build-options.js';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { kernelTargets, listKfarmImages } from '../../src/images/catalog.js';
import type { KernelTarget } from '../../src/matrix/kernel-target.js';
import { BLOB_PREFIX, BlobStore } from '../../src/queue/blob-store.js';
import type { KernelRecord } from '../../src/job/job-payload.js';
import { payloadFor } from '../../src/coordinator/build.js';
import { connectChecked } from '../../src/queue/redis-connection.js';
import type { BuildReport } from '../../src/report/report.js';
import { packSource } from '../../src/source/source-archive.js';
import { example, fixture, isolatedEnv, kfarm, kfarmProcess, tempDir } from '../helpers/kfarm-cli.js';

/**
 * Redis is not a trust root: a password guards it, TLS works, and what is in it is used only
 * with the farm key's seal. Real redis-servers on loopback, real `kfarm worker` processes.
 */
const base = 21000 + (process.pid % 9000);
const started: ResultPromise[] = [];
let dir: string;
let keyFile: string;
let passwordFile: string;
const password = 'a-test-password-nobody-guesses';

/** wrapped: an execa process is a thenable, which an async function would wait for */
async function redisServer(args: string[], ping: string[]): Promise<{ proc: ResultPromise }> {
  const proc = execa('redis-server', ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args], { reject: false });
  started.push(proc);
  for (let i = 0; i < 50; i++) {
    const out = await execa('redis-cli', ping, { reject: false });
    if (out.stdout.trim() === 'PONG') return { proc };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`redis-server ${args.join(' ')} did not start`);
}

async function waitForLine(proc: ResultPromise, pattern: RegExp, ms = 60_000): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`no line matching ${pattern}; stderr so far:\n${seen}`)), ms);
    proc.stderr?.on('data', (chunk: Buffer) => {
      seen += chunk.toString('utf8');
      if (pattern.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

async function stopWorker(worker: ResultPromise): Promise<string> {
  worker.kill('SIGTERM');
  return String((await worker).stderr);
}

const readReport = async (out: string) => JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;

beforeAll(async () => {
  dir = await tempDir('trust');
  keyFile = path.join(dir, 'farm.key');
  passwordFile = path.join(dir, 'redis.password');
  await writeFile(keyFile, `${(await execa('sh', ['-c', 'head -c 32 /dev/urandom | base64'])).stdout}\n`, { mode: 0o600 });
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
});

afterAll(async () => {
  for (const proc of started) proc.kill('SIGTERM');
  await Promise.all(started);
});

describe('a Redis with a password and a farm key', () => {
  const port = base;
  const url = `redis://127.0.0.1:${port}`;
  const ping = ['-p', String(port), '--no-auth-warning', '-a', password, 'ping'];
  let farmEnv: Record<string, string>;
  let target: KernelTarget;

  beforeAll(async () => {
    await redisServer(['--port', String(port), '--requirepass', password], ping);
    farmEnv = { ...(await isolatedEnv('trust')), REDIS_URL: url, REDIS_PASSWORD_FILE: passwordFile, KFARM_FARM_KEY_FILE: keyFile };
    const first = kernelTargets(await listKfarmImages(new DockerRuntime()))[0];
    if (!first) throw new Error('no kfarm image with kernels on this engine');
    target = first;
  });

  it('refuses a client without the password (NOAUTH), in the library and the CLI, and never prints the password', async () => {
    const err = await connectChecked({ url }, 2000).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isKfarmError(err, 'REDIS_UNREACHABLE')).toBe(true);
    expect(String((err as Error).message)).toMatch(/NOAUTH|Authentication required/i);
    const cli = await kfarm(['build', example('hello'), '--out', await tempDir('trust-noauth')], { ...farmEnv, REDIS_PASSWORD_FILE: '' });
    expect(cli.exitCode, cli.stderr).toBe(3);
    expect(cli.stderr).toContain('REDIS_PASSWORD_FILE');
    const wrong = await kfarm(['build', example('hello'), '--out', await tempDir('trust-wrong')], { ...farmEnv, REDIS_URL: `redis://:${password}x@127.0.0.1:${port}` });
    expect(wrong.exitCode, wrong.stderr).toBe(3);
    expect(`${wrong.stdout}${wrong.stderr}`).not.toContain(password);
  });

  it('distributed mode without a farm key: exit 3, FARM_KEY_MISSING says how to make one', async () => {
    const result = await kfarm(['build', example('hello'), '--out', await tempDir('trust-nokey')], { ...farmEnv, KFARM_FARM_KEY_FILE: '' });
    expect(result.exitCode, result.stderr).toBe(3);
    expect(result.stderr).toContain('KFARM_FARM_KEY_FILE');
    expect(result.stderr).toContain('head -c 32 /dev/urandom | base64 > farm.key');
    const worker = await kfarm(['worker'], { ...farmEnv, KFARM_FARM_KEY_FILE: '' }, 30_000);
    expect(worker.exitCode, worker.stderr).toBe(3);
  });

  it('a planted completed record without a valid seal is never used: the kernel is built for real and the report says so', async () => {
    // What a writer to Redis without the key can do: a finished job under the id the
    // coordinator will look up, whose record points at its own ".ko".
    const source = await packSource(example('hello'));
    const payload = payloadFor(source, target, buildOptions({ timeoutSec: 1800, memoryMiB: 4096, diskMiB: 2048, cpus: 2 }), 'planted');
    const jobId = jobKey(payload);
    const connection = new Redis(url, { password, maxRetriesPerRequest: null });
    const blobs = new BlobStore(connection, BLOB_PREFIX);
    const evil = await blobs.put(Buffer.from('not the module you built'));
    const forged: KernelRecord = {
      schemaVersion: 1,
      kernel: target.kernel,
      arch: target.arch,
      image: target.image,
      verdict: 'built',
      packageName: 'hello',
      packageVersion: '1.0.0',
      modules: [{ builtName: 'hello', destName: 'hello', destLocation: '/kernel/extra', installLocation: '/updates/dkms', file: evil }],
      log: await blobs.put(Buffer.from('all good\n')),
      logTruncated: false,
      durationMs: 1,
      worker: 'mallory',
      finishedAt: new Date().toISOString(),
      cacheable: true,
    };
    const queue = new Queue(farmEnv.KFARM_QUEUE ?? '', { connection });
    await queue.add('build', { payload, seal: 'ab'.repeat(32) }, { jobId });
    const rogue = new Worker(farmEnv.KFARM_QUEUE ?? '', async () => ({ record: forged, seal: 'cd'.repeat(32) }), { connection: connection.duplicate() });
    for (let i = 0; i < 100 && (await (await queue.getJob(jobId))?.getState()) !== 'completed'; i++) await new Promise((r) => setTimeout(r, 100));
    await rogue.close();
    expect(await (await queue.getJob(jobId))?.getState()).toBe('completed');
    await queue.close();
    connection.disconnect();

    const worker = kfarmProcess(['worker', '--concurrency', '2'], { ...farmEnv, KFARM_HOSTNAME: 'honest' });
    try {
      await waitForLine(worker, /waiting for builds/);
      const out = await tempDir('trust-planted-out');
      const result = await kfarm(['build', example('hello'), '--out', out, '--kernels', target.kernel], { ...farmEnv, KFARM_HOSTNAME: 'coordinator' });
      expect(result.exitCode, result.stderr).toBe(0);
      const warning = `${target.kernel}: a result in Redis failed its integrity check and was built again`;
      expect(result.stderr).toContain(warning);
      const report = await readReport(out);
      expect(report.warnings).toContain(warning);
      expect(report.kernels).toHaveLength(1);
      const k = report.kernels[0];
      expect(k?.verdict).toBe('built');
      expect(k?.worker).toBe('honest');
      expect(k?.cached).toBe(false);
      expect(JSON.stringify(k)).not.toContain(evil.sha256);
    } finally {
      await stopWorker(worker);
    }
  }, 180_000);

  it('a worker refuses a payload without a valid seal: the job fails at once, nothing is built', async () => {
    const env = { ...farmEnv, KFARM_QUEUE: `${farmEnv.KFARM_QUEUE}-payload` };
    const connection = new Redis(url, { password, maxRetriesPerRequest: null });
    const queue = new Queue(env.KFARM_QUEUE, { connection });
    const runtime = new DockerRuntime();
    const payload = payloadFor({ sha256: 'ef'.repeat(32) }, target, buildOptions({}), 'planted-payload');
    const worker = kfarmProcess(['worker', '--concurrency', '1'], { ...env, KFARM_HOSTNAME: 'careful', KFARM_LOG_LEVEL: 'error' });
    let stderr: string;
    try {
      await waitForLine(worker, /waiting for builds/);
      const job = await queue.add('build', { payload, seal: '00'.repeat(32) }, { jobId: 'planted-payload', attempts: 3 });
      let state = '';
      for (let i = 0; i < 100 && state !== 'failed'; i++) {
        state = await job.getState();
        if (state !== 'failed') await new Promise((r) => setTimeout(r, 100));
      }
      expect(state).toBe('failed');
      const failed = await queue.getJob('planted-payload');
      expect(failed?.failedReason).toContain('integrity check');
      expect(failed?.attemptsMade).toBe(1); // unrecoverable: not retried
      expect(await runtime.listContainers({ 'kfarm.host': 'careful' })).toEqual([]);
    } finally {
      stderr = await stopWorker(worker);
      await queue.close();
      connection.disconnect();
    }
    expect(stderr).toContain('refused a job whose payload failed its integrity check');
  }, 120_000);
});

describe('TLS (rediss://) with a self-signed CA', () => {
  const port = base + 1;
  let tlsEnv: Record<string, string>;

  beforeAll(async () => {
    const tls = path.join(dir, 'tls');
    const sh = (cmd: string) => execa('sh', ['-c', cmd], { cwd: dir });
    await sh(`mkdir -p ${tls} && cd ${tls} &&
      openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=kfarm test CA' -keyout ca.key -out ca.crt 2>/dev/null &&
      openssl req -newkey rsa:2048 -nodes -subj '/CN=127.0.0.1' -keyout server.key -out server.csr 2>/dev/null &&
      printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext &&
      openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.crt 2>/dev/null`);
    await chmod(path.join(tls, 'server.key'), 0o600);
    await redisServer(
      [
        '--port',
        '0',
        '--tls-port',
        String(port),
        '--tls-cert-file',
        path.join(tls, 'server.crt'),
        '--tls-key-file',
        path.join(tls, 'server.key'),
        '--tls-ca-cert-file',
        path.join(tls, 'ca.crt'),
        '--tls-auth-clients',
        'no',
      ],
      ['--tls', '--cacert', path.join(tls, 'ca.crt'), '-p', String(port), 'ping'],
    );
    tlsEnv = { ...(await isolatedEnv('trust-tls')), REDIS_URL: `rediss://127.0.0.1:${port}`, KFARM_REDIS_CA_FILE: path.join(tls, 'ca.crt'), KFARM_FARM_KEY_FILE: keyFile };
  });

  it('a TLS farm (worker and coordinator on rediss://) builds examples/hello', async () => {
    const worker = kfarmProcess(['worker', '--concurrency', '2'], { ...tlsEnv, KFARM_HOSTNAME: 'tls-worker' });
    try {
      await waitForLine(worker, /waiting for builds/);
      const out = await tempDir('trust-tls-out');
      const result = await kfarm(['build', example('hello'), '--out', out], { ...tlsEnv, KFARM_HOSTNAME: 'coordinator' });
      expect(result.exitCode, result.stderr).toBe(0);
      const report = await readReport(out);
      expect(report.kernels.length).toBeGreaterThanOrEqual(2);
      expect(report.kernels.every((k) => k.verdict === 'built' && k.worker === 'tls-worker')).toBe(true);
    } finally {
      await stopWorker(worker);
    }
  }, 240_000);

  it('without the CA the server is not trusted: exit 3 and a hint about KFARM_REDIS_CA_FILE', async () => {
    const result = await kfarm(['build', example('hello'), '--out', await tempDir('trust-tls-noca')], { ...tlsEnv, KFARM_REDIS_CA_FILE: '' });
    expect(result.exitCode, result.stderr).toBe(3);
    expect(result.stderr).toContain('KFARM_REDIS_CA_FILE');
  });
});

describe('kfarm worker and SIGTERM', () => {
  it('a worker whose Redis went away (with a build running) stops within 5 s of SIGTERM and leaves no container', async () => {
    const port = base + 2;
    const redis = await redisServer(['--port', String(port)], ['-p', String(port), 'ping']);
    const env = { ...(await isolatedEnv('trust-sigterm')), REDIS_URL: `redis://127.0.0.1:${port}`, KFARM_FARM_KEY_FILE: keyFile, KFARM_HOSTNAME: 'orphaned' };
    const runtime = new DockerRuntime();
    const worker = kfarmProcess(['worker', '--concurrency', '1'], env);
    await waitForLine(worker, /waiting for builds/);
    const kernel = (await listKfarmImages(runtime))[0]?.kernels[0] ?? 'none';
    const build = kfarmProcess(['build', fixture('hangs'), '--out', await tempDir('trust-sigterm-out'), '--kernels', kernel, '--timeout', '60'], env);
    let running = false;
    for (let i = 0; i < 240 && !running; i++) {
      running = (await runtime.listContainers({ 'kfarm.host': 'orphaned' })).some((c) => c.running);
      if (!running) await new Promise((r) => setTimeout(r, 250));
    }
    expect(running).toBe(true);
    redis.proc.kill('SIGKILL'); // gone for good
    await redis.proc;
    await new Promise((r) => setTimeout(r, 2000));
    const sent = Date.now();
    worker.kill('SIGTERM');
    const ended = await worker;
    const took = Date.now() - sent;
    expect(took).toBeLessThan(5000);
    expect(ended.exitCode).toBe(0);
    expect(await runtime.listContainers({ 'kfarm.host': 'orphaned' })).toEqual([]);
    build.kill('SIGTERM'); // its Redis is gone: the coordinator's fate is not this test's
    await build;
  }, 120_000);

  it('a worker with Redis up stops within 5 s of SIGTERM too', async () => {
    const port = base + 3;
    await redisServer(['--port', String(port)], ['-p', String(port), 'ping']);
    const env = { ...(await isolatedEnv('trust-sigterm-up')), REDIS_URL: `redis://127.0.0.1:${port}`, KFARM_FARM_KEY_FILE: keyFile };
    const worker = kfarmProcess(['worker'], env);
    await waitForLine(worker, /waiting for builds/);
    const sent = Date.now();
    worker.kill('SIGTERM');
    const ended = await worker;
    expect(Date.now() - sent).toBeLessThan(5000);
    expect(ended.exitCode).toBe(0);
  }, 60_000);
});
