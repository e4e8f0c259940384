import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { kfarm, isolatedEnv } from '../helpers/kfarm-cli.js';

/**
 * A real engine cannot be made to answer HTTP 500 on demand, so this one HTTP server stands in
 * for an engine in trouble: it answers the ping and fails every other call, as dockerd does
 * when its storage or containerd breaks.
 */
let server: http.Server;
let port: number;
/** an engine that takes requests and never answers them */
let silent: http.Server;
let silentPort: number;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url?.includes('/_ping')) {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('OK');
      return;
    }
    res.writeHead(500, { 'Content-Type': 'application/json' }).end(JSON.stringify({ message: 'simulated engine failure' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  silent = http.createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  silentPort = (silent.address() as AddressInfo).port;
});

afterAll(async () => {
  silent.closeAllConnections();
  await Promise.all([new Promise((resolve) => server.close(resolve)), new Promise((resolve) => silent.close(resolve))]);
});

describe('an engine that answers 500', () => {
  it('becomes DOCKER_ERROR naming the operation and the status', async () => {
    const runtime = new DockerRuntime(new Docker({ host: '127.0.0.1', port, protocol: 'http' }));
    await runtime.ping();
    const err = await runtime.listImages('io.kfarm.image').catch((e: unknown) => e);
    expect(isKfarmError(err, 'DOCKER_ERROR')).toBe(true);
    expect((err as Error).message).toContain('a list of images (HTTP 500)');
    expect((err as Error).message).toContain('simulated engine failure');
  });

  it('makes the CLI exit 3 with what to do, not a stack trace', async () => {
    const r = await kfarm(['images', 'list'], { ...(await isolatedEnv('engine500')), DOCKER_HOST: `tcp://127.0.0.1:${port}` });
    expect(r.exitCode, r.stderr).toBe(3);
    expect(r.stderr).toContain('kfarm: error: the Docker engine failed during a list of images (HTTP 500)');
    expect(r.stderr).toContain('journalctl -u docker');
    expect(r.stderr).not.toContain('    at ');
  });
});

describe('pulling an image', () => {
  it('says why it failed when the engine refuses', async () => {
    const runtime = new DockerRuntime(new Docker({ host: '127.0.0.1', port, protocol: 'http' }));
    const reasons: string[] = [];
    expect(await runtime.pullImage('debian:bookworm', 10_000, (r) => reasons.push(r))).toBe(false);
    expect(reasons).toEqual([expect.stringContaining('simulated engine failure')]);
  });

  it('gives up at its timeout when nothing answers, and says so', async () => {
    const runtime = new DockerRuntime(new Docker({ host: '127.0.0.1', port: silentPort, protocol: 'http' }));
    const reasons: string[] = [];
    const started = Date.now();
    expect(await runtime.pullImage('debian:bookworm', 1500, (r) => reasons.push(r))).toBe(false);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(reasons).toEqual(['pulling debian:bookworm failed: no answer within 2 s']);
  });
});

describe('a helper container', () => {
  it('that outlives its timeout is killed and removed, with a clear error', async () => {
    const runtime = new DockerRuntime();
    const started = Date.now();
    const err = await runtime.runHelper('kfarm/debian-12', ['bash', '-c', 'echo started; sleep 300'], undefined, 3000).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(isKfarmError(err, 'DOCKER_ERROR')).toBe(true);
    expect((err as Error).message).toContain('ran longer than 3 s and was killed');
    expect((err as { hint?: string }).hint).toContain('started');
    expect(await runtime.listContainers({ 'kfarm.helper': '1' })).toEqual([]);
  }, 60_000);
});
