import os from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { parseSse } from '../../src/service/client/farm-client.js';
import type { BuildReport } from '../../src/report/report.js';
import { LABEL_HOST, LABEL_PID } from '../../src/worker/build-worker.js';
import { debian12Kernels, example, isolatedEnv } from '../helpers/kfarm-cli.js';
import { makeToken, startServe, type ServeProcess } from '../helpers/serve-process.js';
import { execa } from 'execa';

/**
 * A restart loses nothing (issue 23): kfarm serve SIGKILLed while a build runs (one kernel
 * done, the others running or queued) and another waits, then started again, ends each build
 * with exactly one result per kernel; what had finished is not built again; no container of the
 * dead service is left.
 */
const { k61, k61b, k612 } = await debian12Kernels();
const runtime = new DockerRuntime();
let serve: ServeProcess | undefined;

afterAll(async () => {
  await serve?.stop();
});

async function call(url: string, method: string, p: string, token: string, body?: Buffer | string, type?: string) {
  const res = await fetch(`${url}${p}`, { method, headers: { Authorization: `Bearer ${token}`, ...(type ? { 'Content-Type': type } : {}) }, ...(body ? { body } : {}) });
  return { status: res.status, json: await res.json().catch((): unknown => undefined) };
}

describe('kfarm serve killed with SIGKILL mid-build, then started again', () => {
  it('resumes every unfinished build: one result per kernel, nothing finished built twice, no container left', async () => {
    const env = await isolatedEnv('serve-restart');
    const token = makeToken(env.KFARM_STATE_DIR as string, 'ci', ['submit']);
    serve = await startServe(env, ['--concurrency', '1']);
    const source = Buffer.from((await execa('tar', ['-C', example('hello'), '-czf', '-', '.'], { encoding: 'buffer' })).stdout);
    expect((await call(serve.url, 'PUT', '/api/v1/modules/hello', token, source, 'application/gzip')).status).toBe(201);
    const a = (await call(serve.url, 'POST', '/api/v1/builds', token, JSON.stringify({ module: 'hello', kernels: `${k61},${k61b},${k612}` }))).json as { id: string };
    const b = (await call(serve.url, 'POST', '/api/v1/builds', token, JSON.stringify({ module: 'hello', kernels: k612 }))).json as { id: string };

    // the first kernel done (built, not from a cache): kill the service
    const res = await fetch(`${serve.url}/api/v1/builds/${a.id}/events`, { headers: { Authorization: `Bearer ${token}` } });
    let doneBeforeKill = '';
    for await (const e of parseSse(res.body)) {
      if (e.type === 'kernel-done') {
        doneBeforeKill = (e.data as { kernel: string }).kernel;
        break;
      }
    }
    expect(doneBeforeKill).not.toBe('');
    const deadPid = String(serve.proc.pid);
    serve.proc.kill('SIGKILL');
    await serve.proc;
    serve = undefined;

    serve = await startServe(env, ['--concurrency', '1']);
    expect(serve.output()).toMatch(/2 unfinished build\(s\) resumed/);
    for (const id of [a.id, b.id]) {
      const events = await fetch(`${serve.url}/api/v1/builds/${id}/events`, { headers: { Authorization: `Bearer ${token}` } });
      let end: unknown;
      for await (const e of parseSse(events.body)) if (e.type === 'end') end = e.data;
      expect(end, id).toMatchObject({ state: 'done', exitCode: 0 });
    }
    const detail = (await call(serve.url, 'GET', `/api/v1/builds/${a.id}`, token)).json as { results: Array<{ kernel: string; verdict: string }> };
    expect(detail.results.map((r) => r.kernel).sort()).toEqual([k61, k61b, k612].sort());
    expect(detail.results.every((r) => r.verdict === 'built')).toBe(true);
    const report = (await call(serve.url, 'GET', `/api/v1/builds/${a.id}/report`, token)).json as BuildReport;
    // what finished before the kill came from the result store, not a second compile
    expect(report.kernels.find((k) => k.kernel === doneBeforeKill)?.cached).toBe(true);
    const bDetail = (await call(serve.url, 'GET', `/api/v1/builds/${b.id}`, token)).json as { results: unknown[] };
    expect(bDetail.results).toHaveLength(1);
    // the dead service's containers were removed when the new one's workers started
    const left = (await runtime.listContainers({ [LABEL_HOST]: os.hostname() })).filter((c) => c.labels[LABEL_PID] === deadPid);
    expect(left).toEqual([]);
  }, 900_000);
});
