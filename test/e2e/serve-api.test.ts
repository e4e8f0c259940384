import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packTar } from '../../src/executor/archive.js';
import type { BuildReport } from '../../src/report/report.js';
import { ROUTES } from '../../src/service/http/service-routes.js';
import { debian12Kernels, example, isolatedEnv, tempDir } from '../helpers/kfarm-cli.js';
import { apiCall, makeToken, startServe, type ServeProcess } from '../helpers/serve-process.js';
import { execa } from 'execa';

/**
 * kfarm serve's API against the real thing: a serve process, its SQLite file, real builds of
 * examples/hello on setup's kernels. Every JSON answer is validated against the OpenAPI
 * document the server itself serves.
 */
const { k61, k61b } = await debian12Kernels();

let env: Record<string, string>;
let serve: ServeProcess;
let tokens: { read: string; submit: string; admin: string };
let doc: {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema?: unknown }> }> }>>;
  components: { schemas: Record<string, unknown> };
};
const ajv = new Ajv2020({ strict: false });
ajv.addFormat('date-time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z$/);

const call = (method: string, p: string, token: string | undefined, body?: Buffer | string, headers: Record<string, string> = {}) =>
  apiCall(serve.url, method, p, token, body, headers);

/** the answer checked against the OpenAPI document: its path and method exist, the status is documented, the JSON matches */
function conforms(template: string, method: string, status: number, json: unknown): void {
  const op = doc.paths[template]?.[method.toLowerCase()];
  expect(op, `${method} ${template} in the OpenAPI document`).toBeDefined();
  const response = op?.responses[String(status)];
  expect(response, `${method} ${template} documents ${status}`).toBeDefined();
  const schema = response?.content?.['application/json']?.schema;
  if (!schema) return;
  const validate = ajv.compile({ ...schema, components: doc.components });
  // $refs point at #/components/schemas: resolve them inside one schema object
  expect(validate(json), `${method} ${template} ${status}: ${ajv.errorsText(validate.errors)}`).toBe(true);
}

async function tarGz(dir: string): Promise<Buffer> {
  const { stdout } = await execa('tar', ['-C', dir, '-czf', '-', '.'], { encoding: 'buffer' });
  return Buffer.from(stdout);
}

beforeAll(async () => {
  env = await isolatedEnv('serve');
  const state = env.KFARM_STATE_DIR as string;
  tokens = { read: makeToken(state, 'reader', ['read']), submit: makeToken(state, 'ci', ['submit']), admin: makeToken(state, 'root', ['admin']) };
  serve = await startServe(env);
  doc = (await (await fetch(`${serve.url}/api/v1/openapi.json`)).json()) as typeof doc;
}, 120_000);

afterAll(async () => {
  await serve?.stop();
});

describe('kfarm serve: the API and its OpenAPI document', () => {
  it('serves an OpenAPI 3.1 document naming every route the server has, each schema compiling', () => {
    expect((doc as unknown as { openapi: string }).openapi).toBe('3.1.0');
    for (const r of ROUTES) expect(doc.paths[r.path]?.[r.method.toLowerCase()], `${r.method} ${r.path}`).toBeDefined();
    for (const [name, schema] of Object.entries(doc.components.schemas))
      expect(() => ajv.compile({ ...(schema as object), components: doc.components } as object), name).not.toThrow();
  });

  it('listens on 127.0.0.1 unless told otherwise', () => {
    expect(new URL(serve.url).hostname).toBe('127.0.0.1');
  });

  it('answers nothing without a valid token (401) and nothing beyond its scope (403), doing nothing', async () => {
    const none = await call('GET', '/api/v1/modules', undefined);
    expect(none.status).toBe(401);
    conforms('/api/v1/modules', 'GET', 401, none.json);
    expect((await call('GET', '/api/v1/modules', 'kfarm_notatoken')).status).toBe(401);
    const put = await call('PUT', '/api/v1/modules/hello', tokens.read, await tarGz(example('hello')), { 'Content-Type': 'application/gzip' });
    expect(put.status).toBe(403);
    conforms('/api/v1/modules/{name}', 'PUT', 403, put.json);
    const list = await call('GET', '/api/v1/modules', tokens.read);
    expect(list.json).toEqual([]);
    expect((await call('POST', '/api/v1/tokens', tokens.submit, JSON.stringify({ name: 'x', scopes: ['admin'] }))).status).toBe(403);
  });

  it('refuses an upload that is not a module source with the same errors as kfarm build (400)', async () => {
    const noConf = await packTar([{ path: 'hello.c', type: 'file', mode: 0o644, data: Buffer.from('int x;\n') }]);
    const r1 = await call('PUT', '/api/v1/modules/hello', tokens.submit, noConf, { 'Content-Type': 'application/x-tar' });
    expect(r1.status).toBe(400);
    expect((r1.json as { code: string }).code).toBe('DKMS_CONF_MISSING');
    conforms('/api/v1/modules/{name}', 'PUT', 400, r1.json);
    // a name with ../ is refused by the reader, before anything is written; a corrupt tar is 400 too
    const dotdot = await packTar([
      { path: 'dkms.conf', type: 'file', mode: 0o644, data: Buffer.from('PACKAGE_NAME=hello\n') },
      { path: '../../etc/kfarm-escape.conf', type: 'file', mode: 0o644, data: Buffer.from('x') },
    ]);
    const r2 = await call('PUT', '/api/v1/modules/hello', tokens.submit, dotdot, { 'Content-Type': 'application/x-tar' });
    expect(r2.status, r2.text).toBe(400);
    expect((r2.json as { code: string }).code).toBe('UNSAFE_ARCHIVE');
    const corrupt = Buffer.from(dotdot);
    corrupt.write('XXXX', 148, 'latin1'); // the first header's checksum
    const r3 = await call('PUT', '/api/v1/modules/hello', tokens.submit, corrupt, { 'Content-Type': 'application/x-tar' });
    expect(r3.status, r3.text).toBe(400);
    const wrongName = await call('PUT', '/api/v1/modules/other', tokens.submit, await tarGz(example('hello')), { 'Content-Type': 'application/gzip' });
    expect(wrongName.status).toBe(400);
    expect((wrongName.json as { error: string }).error).toMatch(/names the module hello/);
    expect((await call('GET', '/api/v1/modules', tokens.read)).json).toEqual([]);
  });

  it('caps uploads: a declared huge body and an endless chunked one are 413', async () => {
    const declared = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        `${serve.url}/api/v1/builds/source`,
        { method: 'POST', headers: { Authorization: `Bearer ${tokens.submit}`, 'Content-Length': String(10 * 1024 * 1024 * 1024) } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.write(Buffer.alloc(1024));
    });
    expect(declared).toBe(413);
    const endless = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        `${serve.url}/api/v1/builds/source`,
        { method: 'POST', headers: { Authorization: `Bearer ${tokens.submit}`, 'Transfer-Encoding': 'chunked' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
          req.destroy();
        },
      );
      req.on('error', () => undefined);
      const chunk = Buffer.alloc(1024 * 1024);
      const pump = () => {
        while (!req.destroyed && req.write(chunk));
        if (!req.destroyed) req.once('drain', pump);
      };
      pump();
      setTimeout(() => reject(new Error('no answer to an endless upload within 60 s')), 60_000).unref();
    });
    expect(endless).toBe(413);
  }, 90_000);

  let buildId = '';
  it('registers hello, builds it on two kernels, streams progress as server-sent events, and serves its report and artifacts', async () => {
    const put = await call('PUT', '/api/v1/modules/hello?formats=bmdeb', tokens.submit, await tarGz(example('hello')), { 'Content-Type': 'application/gzip' });
    expect(put.status, put.text).toBe(201);
    conforms('/api/v1/modules/{name}', 'PUT', 201, put.json);
    expect(put.json).toMatchObject({ name: 'hello', version: '1.0.0', settings: { formats: ['bmdeb'] } });

    const sub = await call('POST', '/api/v1/builds', tokens.submit, JSON.stringify({ module: 'hello', kernels: `${k61},${k61b}` }));
    expect(sub.status, sub.text).toBe(202);
    conforms('/api/v1/builds', 'POST', 202, sub.json);
    buildId = (sub.json as { id: string }).id;

    const events = await call('GET', `/api/v1/builds/${buildId}/events`, tokens.read);
    expect(events.status).toBe(200);
    const types = [...events.text.matchAll(/^event: (\S+)$/gm)].map((m) => m[1]);
    expect(types[0]).toBe('state');
    expect(types).toContain('plan');
    expect(types.filter((t) => t === 'kernel-done')).toHaveLength(2);
    expect(types.at(-1)).toBe('end');
    const end = JSON.parse(/event: end\ndata: (.*)$/m.exec(events.text)?.[1] ?? '{}') as { state: string; exitCode: number };
    expect(end).toMatchObject({ state: 'done', exitCode: 0 });

    const detail = await call('GET', `/api/v1/builds/${buildId}`, tokens.read);
    conforms('/api/v1/builds/{id}', 'GET', 200, detail.json);
    const results = (detail.json as { results: Array<{ kernel: string; verdict: string; flavour: string }> }).results;
    expect(results.map((r) => [r.kernel, r.verdict, r.flavour]).sort()).toEqual(
      [
        [k61, 'built', 'amd64'],
        [k61b, 'built', 'amd64'],
      ].sort(),
    );

    const report = (await call('GET', `/api/v1/builds/${buildId}/report`, tokens.read)).json as BuildReport;
    expect(report.summary).toEqual({ built: 2, excluded: 0, failed: 0 });
    const tarball = report.kernels[0]?.tarball;
    expect(tarball).toBeDefined();
    const file = await fetch(`${serve.url}/api/v1/builds/${buildId}/artifacts/${tarball?.path ?? ''}`, { headers: { Authorization: `Bearer ${tokens.read}` } });
    expect(file.status).toBe(200);
    expect(
      createHash('sha256')
        .update(Buffer.from(await file.arrayBuffer()))
        .digest('hex'),
    ).toBe(tarball?.sha256);
    const pkg = report.packages?.find((p) => p.format === 'bmdeb');
    expect(pkg).toBeDefined();
    // nothing outside the out dir: dot segments, encoded or not, and kfarm's own staging
    for (const p of ['..%2f..%2fservice%2ffarm.db', '%2e%2e/%2e%2e/farm.db', '.kfarm-staging-1/x', 'logs/..%2f..%2f..%2fsources']) {
      expect((await call('GET', `/api/v1/builds/${buildId}/artifacts/${p}`, tokens.read)).status, p).toBe(404);
    }
  }, 600_000);

  it('a build with verify=load boots the kernel, loads the module and records the load result (the load column of the history)', async () => {
    const put = await call('PUT', '/api/v1/modules/hello?formats=bmdeb&verify=load', tokens.submit, await tarGz(example('hello')), { 'Content-Type': 'application/gzip' });
    expect(put.status, put.text).toBe(200);
    expect((put.json as { settings: { verify?: string } }).settings.verify).toBe('load');
    const sub = await call('POST', '/api/v1/builds', tokens.submit, JSON.stringify({ module: 'hello', kernels: k61 }));
    expect(sub.status, sub.text).toBe(202);
    conforms('/api/v1/builds', 'POST', 202, sub.json);
    const id = (sub.json as { id: string; verify?: string }).id;
    expect((sub.json as { verify?: string }).verify).toBe('load');
    const events = await call('GET', `/api/v1/builds/${id}/events`, tokens.read);
    expect(JSON.parse(/event: end\ndata: (.*)$/m.exec(events.text)?.[1] ?? '{}')).toMatchObject({ state: 'done', exitCode: 0 });
    const detail = (await call('GET', `/api/v1/builds/${id}`, tokens.read)).json as { results: Array<{ kernel: string; load?: string }> };
    expect(detail.results.map((r) => [r.kernel, r.load])).toEqual([[k61, 'loaded']]);
    const report = (await call('GET', `/api/v1/builds/${id}/report`, tokens.read)).json as BuildReport;
    expect(report.kernels[0]?.load?.verdict).toBe('loaded');
    expect((await call('PUT', '/api/v1/modules/hello?verify=maybe', tokens.submit, await tarGz(example('hello')), { 'Content-Type': 'application/gzip' })).status).toBe(400);
  }, 900_000);

  it('lists kernels, modules and builds as documented', async () => {
    for (const [p, t] of [
      ['/api/v1/kernels', '/api/v1/kernels'],
      ['/api/v1/modules', '/api/v1/modules'],
      ['/api/v1/builds', '/api/v1/builds'],
      ['/api/v1/tokens', '/api/v1/tokens'],
    ] as const) {
      const r = await call('GET', p, tokens.admin);
      expect(r.status, p).toBe(200);
      conforms(t, 'GET', 200, r.json);
    }
    const kernels = (await call('GET', '/api/v1/kernels', tokens.read)).json as Array<{ kernel: string }>;
    expect(kernels.map((k) => k.kernel)).toContain(k61);
    // token texts are never listed
    expect(JSON.stringify((await call('GET', '/api/v1/tokens', tokens.admin)).json)).not.toContain(tokens.read);
  });

  it('a build of a module that is not registered is 404; an unknown format 400, with nothing queued', async () => {
    const before = ((await call('GET', '/api/v1/builds', tokens.read)).json as unknown[]).length;
    expect((await call('POST', '/api/v1/builds', tokens.submit, JSON.stringify({ module: 'nope' }))).status).toBe(404);
    const bad = await call('POST', '/api/v1/builds', tokens.submit, JSON.stringify({ module: 'hello', formats: ['zip'] }));
    expect(bad.status).toBe(400);
    conforms('/api/v1/builds', 'POST', 400, bad.json);
    expect(((await call('GET', '/api/v1/builds', tokens.read)).json as unknown[]).length).toBe(before);
  });

  it('kfarm build --farm, with no Docker and no Redis here, gives the out dir a local build gives, and its exit status', async () => {
    const farmOut = await tempDir('farm-out');
    const clientEnv = {
      KFARM_STATE_DIR: await tempDir('farm-client-state'),
      KFARM_FARM_TOKEN: tokens.submit,
      DOCKER_HOST: 'unix:///nonexistent/docker.sock',
      REDIS_URL: '',
      PATH: process.env.PATH ?? '',
    };
    const remote = await execa(
      'node',
      [path.join(process.cwd(), 'bin', 'kfarm.js'), 'build', example('hello'), '--farm', serve.url, '--kernels', `${k61},${k61b}`, '--format', 'bmdeb', '--out', farmOut],
      {
        env: clientEnv,
        extendEnv: false,
        reject: false,
      },
    );
    expect(remote.exitCode, remote.stderr).toBe(0);
    expect(remote.stderr).toMatch(/building .*hello for 2 kernel\(s\) via the farm/);
    const localOut = await tempDir('local-out');
    const local = await execa('node', ['bin/kfarm.js', 'build', example('hello'), '--kernels', `${k61},${k61b}`, '--format', 'bmdeb', '--out', localOut], { env, reject: false });
    expect(local.exitCode, local.stderr).toBe(0);
    const files = async (dir: string) =>
      (await execa('find', ['.', '-type', 'f'], { cwd: dir })).stdout
        .split('\n')
        .filter((f) => !f.includes('.kfarm'))
        .sort();
    expect(await files(farmOut)).toEqual(await files(localOut));
    const remoteReport = JSON.parse(await readFile(path.join(farmOut, 'report.json'), 'utf8')) as BuildReport;
    const localReport = JSON.parse(await readFile(path.join(localOut, 'report.json'), 'utf8')) as BuildReport;
    expect(remoteReport.source).toEqual(localReport.source);
    const modules = (r: BuildReport) => r.kernels.map((k) => [k.kernel, k.verdict, k.modules.map((m) => m.sha256)]).sort();
    expect(modules(remoteReport)).toEqual(modules(localReport));
    // SHA256SUMS was made here, and checks
    await execa('sha256sum', ['-c', 'SHA256SUMS', '--quiet'], { cwd: farmOut });
  }, 600_000);

  it('kfarm build --farm exits as a local build does: 2 for a source without dkms.conf, 2 for a bad token', async () => {
    const dir = await tempDir('farm-noconf');
    await execa('sh', ['-c', `echo 'int x;' > ${dir}/x.c`]);
    const base = { KFARM_STATE_DIR: await tempDir('farm-client-state2'), PATH: process.env.PATH ?? '' };
    const noConf = await execa('node', ['bin/kfarm.js', 'build', dir, '--farm', serve.url, '--out', await tempDir('o')], {
      env: { ...base, KFARM_FARM_TOKEN: tokens.submit },
      extendEnv: false,
      reject: false,
    });
    expect(noConf.exitCode, noConf.stderr).toBe(2);
    const badToken = await execa('node', ['bin/kfarm.js', 'build', example('hello'), '--farm', serve.url, '--out', await tempDir('o')], {
      env: { ...base, KFARM_FARM_TOKEN: tokens.read },
      extendEnv: false,
      reject: false,
    });
    expect(badToken.exitCode, badToken.stderr).toBe(2);
    expect(badToken.stderr).toMatch(/refused the token/);
  }, 120_000);
});
