import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REGRESSION_ROUTES } from '../../src/service/http/regressions-routes.js';
import { debian12Kernels, fixture, isolatedEnv, tempDir } from '../helpers/kfarm-cli.js';
import { apiCall, makeToken, startServe, type ServeProcess } from '../helpers/serve-process.js';

/**
 * kfarm serve's regression view against the real thing: a module that builds on the older 6.1
 * ABI of setup's kernels, fails on the newer one and builds on 6.12, registered and built over
 * the API; its windows and the changelog between its last good and first bad kernel, read from
 * the real headers in the kernels' images. Every JSON answer is validated against the OpenAPI
 * document the server serves.
 */
const { k61, k61b, k612 } = await debian12Kernels();
const abi = (kernel: string) => Number(/^6\.1\.0-(\d+)-/.exec(kernel)?.[1]);

let serve: ServeProcess;
let read: string;
let submit: string;
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
  expect(schema, `${method} ${template} ${status} has a JSON schema`).toBeDefined();
  const validate = ajv.compile({ ...(schema as object), components: doc.components });
  expect(validate(json), `${method} ${template} ${status}: ${ajv.errorsText(validate.errors)}`).toBe(true);
}

/** the fixture, broken from the newest 6.1 ABI setup holds on (whatever setup synced) */
async function moduleSource(): Promise<Buffer> {
  const dir = path.join(await tempDir('fails-from-abi'), 'src');
  await cp(fixture('fails-from-abi'), dir, { recursive: true });
  const c = path.join(dir, 'failsfromabi.c');
  await writeFile(c, (await readFile(c, 'utf8')).replace(/#define BROKEN_FROM_ABI \d+/, `#define BROKEN_FROM_ABI ${abi(k61)}`));
  const { stdout } = await execa('tar', ['-C', dir, '-czf', '-', '.'], { encoding: 'buffer' });
  return Buffer.from(stdout);
}

interface Window {
  state: string;
  lastGood?: string;
  firstBad?: string;
  firstError?: string;
  buildId?: string;
  sentence: string;
}
interface Series {
  release: string;
  arch: string;
  flavour: string;
  line: string;
  build?: Window;
}

const base = '/api/v1/modules/failsfromabi/regressions';

beforeAll(async () => {
  expect(abi(k61b), `setup's two 6.1 kernels ${k61b} ${k61}`).toBeLessThan(abi(k61));
  const env = await isolatedEnv('serve-regressions');
  const state = env.KFARM_STATE_DIR as string;
  read = makeToken(state, 'reader', ['read']);
  submit = makeToken(state, 'ci', ['submit']);
  serve = await startServe(env);
  doc = (await (await fetch(`${serve.url}/api/v1/openapi.json`)).json()) as typeof doc;
}, 120_000);

afterAll(async () => {
  await serve?.stop();
});

describe('kfarm serve: what broke, where, and since when', () => {
  it('documents its routes in the OpenAPI document', () => {
    for (const r of REGRESSION_ROUTES) expect(doc.paths[r.path]?.[r.method.toLowerCase()], `${r.method} ${r.path}`).toBeDefined();
  });

  it('answers 404 for a module neither registered nor built, 400 for a name that is none, 401 without a token', async () => {
    const none = await call('GET', base, read);
    expect(none.status).toBe(404);
    conforms('/api/v1/modules/{name}/regressions', 'GET', 404, none.json);
    const bad = await call('GET', '/api/v1/modules/no%20name/regressions', read);
    expect(bad.status).toBe(400);
    conforms('/api/v1/modules/{name}/regressions', 'GET', 400, bad.json);
    expect((await call('GET', base, undefined)).status).toBe(401);
  });

  let buildId = '';
  it(`a module that builds on ${k61b}, fails on ${k61} and builds on ${k612}: the 6.1 series is broken between them, 6.12 is ok`, async () => {
    const put = await call('PUT', '/api/v1/modules/failsfromabi', submit, await moduleSource(), { 'Content-Type': 'application/gzip' });
    expect(put.status, put.text).toBe(201);
    const sub = await call('POST', '/api/v1/builds', submit, JSON.stringify({ module: 'failsfromabi', kernels: `${k61b},${k61},${k612}` }));
    expect(sub.status, sub.text).toBe(202);
    buildId = (sub.json as { id: string }).id;
    const events = await call('GET', `/api/v1/builds/${buildId}/events`, read);
    expect(JSON.parse(/event: end\ndata: (.*)$/m.exec(events.text)?.[1] ?? '{}')).toMatchObject({ state: 'done', exitCode: 1 });

    const r = await call('GET', base, read);
    expect(r.status, r.text).toBe(200);
    conforms('/api/v1/modules/{name}/regressions', 'GET', 200, r.json);
    const body = r.json as { module: string; open: number; series: Series[] };
    expect(body.module).toBe('failsfromabi');
    expect(body.open).toBe(1);
    expect(body.series.map((s) => [s.release, s.arch, s.flavour, s.line, s.build?.state])).toEqual([
      ['debian-12', 'x86_64', 'amd64', '6.1', 'broken'],
      ['debian-12', 'x86_64', 'amd64', '6.12', 'ok'],
    ]);
    const broken = body.series[0]?.build;
    expect(broken).toMatchObject({ lastGood: k61b, firstBad: k61, buildId, sentence: `builds on ${k61b}, fails since ${k61}` });
    expect(broken?.firstError).toMatch(/failsfromabi\.c:\d+:\d+: error: #error "failsfromabi: struct changed in this 6.1 ABI"/);
    expect(body.series[1]?.build?.sentence).toBe(`builds on ${k612}`);
  }, 300_000);

  it("gives the Debian changelog entries between the last good and the first bad kernel, read from the first bad kernel's headers", async () => {
    const r = await call('GET', `${base}/changelog?release=debian-12&arch=amd64&flavour=amd64&line=6.1`, read);
    expect(r.status, r.text).toBe(200);
    conforms('/api/v1/modules/{name}/regressions/changelog', 'GET', 200, r.json);
    const body = r.json as {
      state: string;
      sentence: string;
      lastGood: { kernel: string; version?: string };
      firstBad: { kernel: string; version?: string };
      source?: { image: string; path: string };
      entries: Array<{ package: string; version: string }>;
      complete: boolean;
      note?: string;
    };
    expect(body).toMatchObject({ state: 'broken', sentence: `builds on ${k61b}, fails since ${k61}`, lastGood: { kernel: k61b }, firstBad: { kernel: k61 } });
    // the versions come from the images' labels (this farm never looked at the archive)
    expect(body.lastGood.version).toMatch(/^6\.1\.\d+-\d+/);
    expect(body.firstBad.version).toMatch(/^6\.1\.\d+-\d+/);
    expect(body.source?.path).toMatch(/changelog\.Debian\.gz$/);
    expect(body.entries.length, body.note).toBeGreaterThan(0);
    expect(body.entries[0]).toMatchObject({ package: 'linux', version: body.firstBad.version });
    expect(body.entries.map((e) => e.version)).not.toContain(body.lastGood.version);
    expect(body.complete, body.note).toBe(true);
  }, 180_000);

  it('refuses a changelog for an ok window (409), an ambiguous or unnamed series (400), a series it does not have (404)', async () => {
    const ok = await call('GET', `${base}/changelog?release=debian-12&flavour=amd64&line=6.12`, read);
    expect(ok.status, ok.text).toBe(409);
    conforms('/api/v1/modules/{name}/regressions/changelog', 'GET', 409, ok.json);
    expect((ok.json as { error: string }).error).toContain(`builds on ${k612}`);
    const ambiguous = await call('GET', `${base}/changelog?release=debian-12&flavour=amd64`, read);
    expect(ambiguous.status).toBe(400);
    conforms('/api/v1/modules/{name}/regressions/changelog', 'GET', 400, ambiguous.json);
    expect((ambiguous.json as { error: string }).error).toMatch(/line=6\.1\b.*line=6\.12/);
    expect((await call('GET', `${base}/changelog?flavour=amd64`, read)).status).toBe(400);
    expect((await call('GET', `${base}/changelog?release=debian-12&flavour=amd64&line=6.1&check=speed`, read)).status).toBe(400);
    const none = await call('GET', `${base}/changelog?release=debian-13&flavour=amd64`, read);
    expect(none.status).toBe(404);
    conforms('/api/v1/modules/{name}/regressions/changelog', 'GET', 404, none.json);
  });
});
