import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { execa } from 'execa';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { htmlText } from '../../src/report/html-text.js';
import { readReport } from '../../src/report/read-report.js';
import type { BuildReport } from '../../src/report/report.js';
import { REGRESSION_ROUTES } from '../../src/service/http/regressions-routes.js';
import { buildDir, servicePaths } from '../../src/service/service-paths.js';
import { debian12Kernels, fixture, isolatedEnv, KFARM_BIN, tempDir } from '../helpers/kfarm-cli.js';
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
let state: string;
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
  const dir = await moduleDir();
  const { stdout } = await execa('tar', ['-C', dir, '-czf', '-', '.'], { encoding: 'buffer' });
  return Buffer.from(stdout);
}

async function moduleDir(): Promise<string> {
  const dir = path.join(await tempDir('fails-from-abi'), 'src');
  await cp(fixture('fails-from-abi'), dir, { recursive: true });
  const c = path.join(dir, 'failsfromabi.c');
  await writeFile(c, (await readFile(c, 'utf8')).replace(/#define BROKEN_FROM_ABI \d+/, `#define BROKEN_FROM_ABI ${abi(k61)}`));
  return dir;
}

const FIRST_ERROR = /failsfromabi\.c:\d+:\d+: error: #error "failsfromabi: struct changed in this 6\.1 ABI"/;

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
  state = env.KFARM_STATE_DIR as string;
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

  it("the build's own out dir says it too: report.json and report.html carry the window, its first error and changelog, and SHA256SUMS checks", async () => {
    const out = buildDir(servicePaths(state), buildId).out;
    // the one schema-checked reader reads it back
    const report = await readReport(out);
    expect(report.regressions?.map((r) => [r.release, r.arch, r.flavour, r.line, r.check, r.state])).toEqual([['debian-12', 'x86_64', 'amd64', '6.1', 'build', 'broken']]);
    const r = report.regressions?.[0];
    expect(r).toMatchObject({ module: 'failsfromabi', lastGood: k61b, firstBad: k61, buildId, sentence: `builds on ${k61b}, fails since ${k61}` });
    expect(r?.firstError).toMatch(FIRST_ERROR);
    expect(r?.firstError).toBe(report.kernels.find((k) => k.kernel === k61)?.firstError);
    expect(r?.changelog?.entries.length, r?.changelog?.note).toBeGreaterThan(0);
    expect(r?.changelog?.entries[0]).toMatchObject({ package: 'linux', version: r?.changelog?.firstBad.version });
    expect(r?.changelog?.complete, r?.changelog?.note).toBe(true);
    // the API answers the same report
    expect(((await call('GET', `/api/v1/builds/${buildId}/report`, read)).json as BuildReport).regressions).toEqual(report.regressions);

    const html = await readFile(path.join(out, 'report.html'), 'utf8');
    expect(html).toContain(`<span class="sentence">${htmlText(r?.sentence ?? 'none')}</span>`);
    expect(html).toContain(`<div class="first-error">${htmlText(r?.firstError ?? 'none')}</div>`);
    // SHA256SUMS was made for the report with its regressions: every view and the model agree
    await execa('sha256sum', ['-c', 'SHA256SUMS', '--quiet'], { cwd: out });

    // as a person sees it: the section shows, styled (its CSS allowed by the page's CSP hash), and nothing is refused
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      await page.addInitScript(`document.addEventListener('securitypolicyviolation', (e) => console.error('csp violation: ' + e.violatedDirective + ' ' + e.blockedURI));`);
      await page.goto(pathToFileURL(path.join(out, 'report.html')).href);
      const item = page.locator('#regressions li.regression');
      expect(await item.count()).toBe(1);
      expect(await item.locator('.sentence').textContent()).toBe(r?.sentence);
      expect(await item.locator('.first-error').textContent()).toBe(r?.firstError);
      expect(await item.evaluate((el) => (globalThis as unknown as { getComputedStyle(e: unknown): { borderLeftColor: string } }).getComputedStyle(el).borderLeftColor)).toBe(
        'rgb(192, 57, 43)',
      );
      // the matrix's script ran too (it fills the shown count)
      expect(await page.locator('#shown').textContent()).toBe(`${report.kernels.length} of ${report.kernels.length} results shown`);
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 120_000);

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

  it('kfarm build --farm prints each regression and its first error after the table, and its out dir carries them', async () => {
    const farmOut = await tempDir('regressions-farm-out');
    const run = await execa('node', [KFARM_BIN, 'build', await moduleDir(), '--farm', serve.url, '--kernels', `${k61b},${k61},${k612}`, '--out', farmOut], {
      env: { KFARM_STATE_DIR: await tempDir('regressions-client'), KFARM_FARM_TOKEN: submit, DOCKER_HOST: 'unix:///nonexistent/docker.sock', PATH: process.env.PATH ?? '' },
      extendEnv: false,
      reject: false,
    });
    expect(run.exitCode, run.stderr).toBe(1);
    const lines = run.stdout.split('\n');
    const at = lines.findIndex((l) => l === `regression: failsfromabi 0.1 debian-12/amd64 amd64 6.1 (build): builds on ${k61b}, fails since ${k61}`);
    expect(at, run.stdout).toBeGreaterThan(0);
    expect(lines[at + 1]).toMatch(new RegExp(`^  \\S*${FIRST_ERROR.source}$`));
    const report = await readReport(farmOut);
    expect(report.regressions?.map((r) => r.sentence)).toEqual([`builds on ${k61b}, fails since ${k61}`]);
    await execa('sha256sum', ['-c', 'SHA256SUMS', '--quiet'], { cwd: farmOut });
  }, 300_000);
});
