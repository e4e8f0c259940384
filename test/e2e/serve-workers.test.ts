import { randomBytes } from 'node:crypto';
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';
import { debian12Kernels, isolatedEnv, kfarmProcess, tempDir } from '../helpers/kfarm-cli.js';
import { apiCall, makeToken, startServe, type ServeProcess } from '../helpers/serve-process.js';

/**
 * The farm's workers live, in distributed mode: a real redis-server on loopback, a real
 * `kfarm worker` process (it builds), `kfarm serve` with REDIS_URL (it plans and enqueues). While
 * a build runs there, GET /api/v1/workers and the dashboard's model show the worker with the
 * build it runs now, from its advert in Redis; once the build ends it runs nothing; once the
 * worker stops it is listed as gone. Every answer is checked against the OpenAPI document the
 * server serves.
 */
const { k61, k61b } = await debian12Kernels();
const KERNELS = [k61b, k61];
const port = 21000 + (process.pid % 9000);
const REDIS_URL = `redis://127.0.0.1:${port}`;
const HOST = `workers-e2e-${process.pid}`;

let redis: ResultPromise | undefined;
let worker: ResultPromise | undefined;
let serve: ServeProcess | undefined;
let env: Record<string, string>;
let read = '';
let submit = '';

interface Worker {
  worker: string;
  host: string;
  running: number;
  concurrency: number;
  images: Array<{ name: string; kernels: string[] }>;
  state: string;
  goneSince?: string;
}

const ajv = new Ajv2020({ strict: false });
ajv.addFormat('date-time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z$/);
let validate: ReturnType<typeof ajv.compile> | undefined;

async function workers(): Promise<Worker[]> {
  const r = await apiCall(serve?.url ?? '', 'GET', '/api/v1/workers', read);
  expect(r.status, r.text).toBe(200);
  expect(validate?.(r.json), ajv.errorsText(validate?.errors)).toBe(true);
  return (r.json as { workers: Worker[] }).workers.filter((w) => w.host === HOST);
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${Math.round(timeoutMs / 1000)} s\n${serve?.output().slice(-3000) ?? ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** examples/hello, each kernel's build 4 s longer (a PRE_BUILD sleep): long enough to see it run */
async function slowHello(): Promise<Buffer> {
  const dir = path.join(await tempDir('workers-hello'), 'src');
  await cp(path.join(packageRoot, 'examples', 'hello'), dir, { recursive: true });
  await writeFile(path.join(dir, 'slow.sh'), '#!/bin/sh\nsleep 4\n', { mode: 0o755 });
  await writeFile(path.join(dir, 'dkms.conf'), `${await readFile(path.join(dir, 'dkms.conf'), 'utf8')}PRE_BUILD="slow.sh"\n`);
  const { stdout } = await execa('tar', ['-C', dir, '-czf', '-', '.'], { encoding: 'buffer' });
  return Buffer.from(stdout);
}

beforeAll(async () => {
  redis = execa('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { reject: false });
  for (let i = 0; i < 50; i++) {
    if ((await execa('redis-cli', ['-p', String(port), 'ping'], { reject: false })).stdout === 'PONG') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const keyFile = path.join(await tempDir('workers-key'), 'farm.key');
  await writeFile(keyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  env = { ...(await isolatedEnv('serve-workers')), REDIS_URL, KFARM_FARM_KEY_FILE: keyFile };
  read = makeToken(env.KFARM_STATE_DIR as string, 'reader', ['read']);
  submit = makeToken(env.KFARM_STATE_DIR as string, 'ci', ['submit']);
  worker = kfarmProcess(['worker', '--concurrency', '1', '--verify', 'none'], { ...env, KFARM_HOSTNAME: HOST });
  serve = await startServe(env);
  const doc = (await (await fetch(`${serve.url}/api/v1/openapi.json`)).json()) as {
    paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema?: object }> }> }>>;
    components: object;
  };
  const schema = doc.paths['/api/v1/workers']?.get?.responses['200']?.content?.['application/json']?.schema;
  expect(schema, 'GET /api/v1/workers in the OpenAPI document').toBeDefined();
  validate = ajv.compile({ ...schema, components: doc.components });
}, 120_000);

afterAll(async () => {
  await serve?.stop();
  worker?.kill('SIGTERM');
  await worker;
  redis?.kill('SIGTERM');
  await redis;
});

describe('kfarm serve with REDIS_URL: the workers live', () => {
  it('shows the worker running the build, then running nothing, then gone once it stops', async () => {
    // the worker's advert reaches the service: live, its images and kernels, its concurrency
    const [idle] = await until('the worker advertising', 60_000, async () => {
      const ws = await workers();
      return ws.length > 0 ? ws : undefined;
    });
    expect(idle).toMatchObject({ host: HOST, running: 0, concurrency: 1, state: 'live' });
    expect(idle?.worker).toMatch(new RegExp(`^${HOST}:\\d+$`));
    expect(idle?.images.filter((i) => i.name === 'debian-12').flatMap((i) => i.kernels)).toEqual(expect.arrayContaining(KERNELS));

    const put = await apiCall(serve?.url ?? '', 'PUT', '/api/v1/modules/hello', submit, await slowHello(), { 'Content-Type': 'application/gzip' });
    expect(put.status, put.text).toBe(201);
    const sub = await apiCall(serve?.url ?? '', 'POST', '/api/v1/builds', submit, JSON.stringify({ module: 'hello', kernels: KERNELS.join(',') }));
    expect(sub.status, sub.text).toBe(202);
    const id = (sub.json as { id: string }).id;

    // while it builds: the worker runs one build (its concurrency), said by its advert within a poll or two
    const seen: number[] = [];
    let state = '';
    const started = Date.now();
    while (!['done', 'failed'].includes(state) && Date.now() - started < 300_000) {
      const [w] = await workers();
      seen.push(w?.running ?? -1);
      const dash = await apiCall(serve?.url ?? '', 'GET', '/api/v1/dashboard', read);
      const inModel = (dash.json as { live: { workers: Worker[] } }).live.workers.find((x) => x.host === HOST);
      if (w && inModel) expect(inModel.worker).toBe(w.worker);
      state = ((await apiCall(serve?.url ?? '', 'GET', `/api/v1/builds/${id}`, read)).json as { build: { state: string } }).build.state;
      await new Promise((r) => setTimeout(r, 300));
    }
    console.log(`[serve-workers] running counts seen during the build: ${[...new Set(seen)].join(', ')} (${seen.length} polls)`);
    expect(state).toBe('done');
    expect(seen).toContain(1);
    expect(seen.every((n) => n === 0 || n === 1)).toBe(true);
    await until('the worker running nothing after the build', 30_000, async () => ((await workers())[0]?.running === 0 ? true : undefined));

    // the worker stops: its advert is withdrawn, the service lists it as gone
    worker?.kill('SIGTERM');
    await worker;
    const gone = await until('the worker gone', 30_000, async () => {
      const [w] = await workers();
      return w?.state === 'gone' ? w : undefined;
    });
    expect(gone).toMatchObject({ host: HOST, running: 0, state: 'gone' });
    expect(Date.parse(gone.goneSince ?? '')).toBeGreaterThan(started);
  }, 420_000);
});
