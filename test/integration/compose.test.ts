import { access, readdir, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { packageRoot } from '../../src/paths.js';
import { connectChecked } from '../../src/queue/redis-connection.js';
import type { BuildReport } from '../../src/report/report.js';
import { debian12Kernels, example, isolatedEnv, KFARM_BIN, kfarm, tempDir } from '../helpers/kfarm-cli.js';

/**
 * compose.yaml as a user runs it: Redis (with the password and farm key it makes at first
 * start) and a worker built from the repo by `docker-compose up --build`, and a coordinator
 * with no Docker engine of its own that builds through them with those two files.
 */
const project = `kfarmtest${process.pid}`;
const port = 30000 + (process.pid % 10000);
const REDIS_URL = `redis://127.0.0.1:${port}`;
/** where the compose `serve` service is published (127.0.0.1 only) */
const servePort = 40000 + (process.pid % 10000);
let composeEnv: Record<string, string>;
/** where compose keeps the farm's secrets (./.kfarm-farm by default) */
let farmDir: string;

/** Docker's compose plugin where there is one, else docker-compose 1.x (Debian's package). */
async function compose(args: string[], timeoutMs = 900_000) {
  const plugin = (await execa('docker', ['compose', 'version'], { reject: false })).exitCode === 0;
  const [file, ...pre] = plugin ? ['docker', 'compose'] : ['docker-compose'];
  return execa(file, [...pre, '-p', project, ...args], { cwd: packageRoot, env: composeEnv, reject: false, timeout: timeoutMs, all: true });
}

/** Behind a TLS-intercepting proxy npm in the image build needs its CA: what a user passes. */
async function extraCaCerts(): Promise<string> {
  const dir = '/usr/local/share/ca-certificates';
  const names = (await readdir(dir).catch(() => [])).filter((n) => n.endsWith('.crt')).sort();
  return (await Promise.all(names.map((n) => readFile(path.join(dir, n), 'utf8')))).join('\n');
}

beforeAll(async () => {
  farmDir = await tempDir('compose-farm');
  composeEnv = { KFARM_REDIS_PORT: String(port), KFARM_SERVE_PORT: String(servePort), KFARM_FARM_DIR: farmDir, KFARM_EXTRA_CA_CERTS: await extraCaCerts() };
  const up = await compose(['up', '-d', '--build']);
  if (up.exitCode !== 0) throw new Error(`docker-compose up failed (${up.exitCode}):\n${String(up.all).split('\n').slice(-30).join('\n')}`);
});

afterAll(async () => {
  await compose(['down', '-v', '--remove-orphans'], 120_000);
});

describe('compose.yaml', () => {
  it('makes a Redis password and a farm key (0600) at first start; Redis refuses a client without the password and is published on 127.0.0.1 only', async () => {
    for (const name of ['redis.password', 'farm.key']) {
      let there = false;
      for (let i = 0; i < 60 && !there; i++) {
        there = await access(path.join(farmDir, name)).then(
          () => true,
          () => false,
        );
        if (!there) await new Promise((r) => setTimeout(r, 500));
      }
      expect(there, name).toBe(true);
      expect((await stat(path.join(farmDir, name))).mode & 0o777).toBe(0o600);
    }
    const refused = await connectChecked({ url: REDIS_URL }, 3000).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isKfarmError(refused, 'REDIS_UNREACHABLE')).toBe(true);
    expect((refused as Error).message).toMatch(/NOAUTH|Authentication required/i);
    const published = await compose(['port', 'redis', '6379'], 60_000);
    expect(published.stdout.trim()).toBe(`127.0.0.1:${port}`);
    const logs = await compose(['logs', 'redis', 'worker'], 60_000);
    expect(String(logs.all)).not.toContain((await readFile(path.join(farmDir, 'redis.password'), 'utf8')).trim());
  });

  it('runs Redis and a worker that build for a coordinator without Docker, given the password and farm key files', async () => {
    // No engine for the coordinator: whatever is built, the compose worker built it. Its own
    // state dir, so its result store is empty: on a farm that built hello before, the host's
    // store (~/.kfarm) would answer every kernel and the compose worker would build nothing.
    // KFARM_KERNELS: setup's set, not the hundreds of kernels a used farm may hold.
    const { KFARM_STATE_DIR, KFARM_KERNELS } = await isolatedEnv('compose');
    const env = {
      REDIS_URL,
      REDIS_PASSWORD_FILE: path.join(farmDir, 'redis.password'),
      KFARM_FARM_KEY_FILE: path.join(farmDir, 'farm.key'),
      DOCKER_HOST: 'unix:///nonexistent/docker.sock',
      KFARM_STATE_DIR: KFARM_STATE_DIR ?? '',
      KFARM_KERNELS: KFARM_KERNELS ?? '',
    }; // compose's worker serves the default queue (no KFARM_QUEUE)
    let kernels = await kfarm(['kernels'], env);
    for (let i = 0; i < 60 && kernels.exitCode !== 0; i++) {
      await new Promise((r) => setTimeout(r, 1000)); // the worker advertises once it is up
      kernels = await kfarm(['kernels'], env);
    }
    expect(kernels.exitCode, kernels.stderr).toBe(0);

    const out = await tempDir('compose-out');
    const result = await kfarm(['build', example('hello'), '--out', out], env);
    expect(result.exitCode, `${result.stdout}\n${result.stderr}`).toBe(0);
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
    expect(report.kernels.length).toBeGreaterThanOrEqual(2);
    expect(report.kernels.map((k) => k.kernel).sort()).toEqual(KFARM_KERNELS?.split(',').sort());
    for (const k of report.kernels) {
      expect(k.verdict).toBe('built');
      expect(k.cached, k.kernel).toBe(false);
      expect(k.worker).not.toBe(os.hostname());
    }
  });

  it('runs kfarm serve, published on 127.0.0.1 only and healthy by its healthcheck; a token from `compose exec serve kfarm tokens create` lists the kernels and builds on the compose workers', async () => {
    const published = await compose(['port', 'serve', '8470'], 60_000);
    expect(published.stdout.trim()).toBe(`127.0.0.1:${servePort}`);
    const id = (await compose(['ps', '-q', 'serve'], 60_000)).stdout.trim();
    expect(id).not.toBe('');
    // Docker's own verdict on the service's healthcheck (GET /api/v1/health inside the container)
    let health = '';
    for (let i = 0; i < 90 && health !== 'healthy'; i++) {
      health = (await execa('docker', ['inspect', '--format', '{{.State.Health.Status}}', id], { reject: false })).stdout.trim();
      if (health !== 'healthy') await new Promise((r) => setTimeout(r, 1000));
    }
    expect(health, String((await compose(['logs', 'serve'], 60_000)).all)).toBe('healthy');
    const url = `http://127.0.0.1:${servePort}`;
    expect(await (await fetch(`${url}/api/v1/health`)).json()).toEqual({ ok: true });

    const made = await compose(['exec', '-T', 'serve', 'kfarm', 'tokens', 'create', 'compose-ci', '--scope', 'read,submit'], 120_000);
    expect(made.exitCode, String(made.all)).toBe(0);
    const token = made.stdout.trim();
    expect(token).toMatch(/^[A-Za-z0-9_-]{20,200}$/);
    expect((await fetch(`${url}/api/v1/kernels`)).status).toBe(401);
    // the kernels the compose worker advertises through Redis (serve has no Docker engine)
    let kernels: unknown;
    for (let i = 0; i < 60; i++) {
      const res = await fetch(`${url}/api/v1/kernels`, { headers: { Authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      kernels = await res.json();
      if (JSON.stringify(kernels).includes('-amd64')) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const { k61 } = await debian12Kernels();
    expect(JSON.stringify(kernels)).toContain(k61);

    // a CI runner with only Node.js: the build runs on the compose worker, through serve
    const out = await tempDir('compose-serve-out');
    const remote = await execa('node', [KFARM_BIN, 'build', example('hello'), '--farm', url, '--kernels', k61, '--out', out], {
      env: { PATH: process.env.PATH ?? '', KFARM_STATE_DIR: await tempDir('compose-serve-client'), KFARM_FARM_TOKEN: token, DOCKER_HOST: 'unix:///nonexistent/docker.sock' },
      extendEnv: false,
      reject: false,
      cwd: packageRoot,
    });
    expect(remote.exitCode, String(remote.stderr)).toBe(0);
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
    expect(report.kernels.map((k) => [k.kernel, k.verdict])).toEqual([[k61, 'built']]);
    expect(report.kernels[0]?.worker).not.toBe(os.hostname());
  }, 600_000);
});
