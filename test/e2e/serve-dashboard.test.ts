import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';
import { DASHBOARD_CSP } from '../../src/service/dashboard/render-dashboard.js';
import { LOGIN_CSP } from '../../src/service/dashboard/render-login.js';
import type { ResultRow } from '../../src/service/farm-db.js';
import { debian12Kernels, fixture, isolatedEnv, tempDir } from '../helpers/kfarm-cli.js';
import { apiCall, makeToken, startServe, type ServeProcess } from '../helpers/serve-process.js';

/**
 * The dashboard of a real `kfarm serve` in Debian's chromium (driven by playwright-core): a
 * person logs in with a read token through the form, the matrix shows what the database holds
 * for a module that builds on the older 6.1 ABI of setup's kernels and fails on the newer one,
 * the regression card shows that window and, once the server has read it in the background,
 * the Debian changelog from the first bad kernel's headers; a second module's build, run one
 * kernel at a time (--concurrency 1), moves the live section while the page stays the same
 * page, and its results fill the matrix in place. No console error or CSP violation on the way.
 */
const CHROMIUM = '/usr/bin/chromium';
const SHOTS = path.join(packageRoot, 'test-output');
const { k61, k61b, k612 } = await debian12Kernels();
const KERNELS = [k61b, k61, k612];
const abi = (kernel: string) => Number(/^6\.1\.0-(\d+)-/.exec(kernel)?.[1]);

let serve: ServeProcess;
let browser: Browser;
let read: string;
let submit: string;

const call = (method: string, p: string, token: string, body?: Buffer | string, headers: Record<string, string> = {}) => apiCall(serve.url, method, p, token, body, headers);

async function tarOf(dir: string): Promise<Buffer> {
  const { stdout } = await execa('tar', ['-C', dir, '-czf', '-', '.'], { encoding: 'buffer' });
  return Buffer.from(stdout);
}

/** fails-from-abi, broken from the newest 6.1 ABI setup holds on (as serve-regressions.test.ts) */
async function failsFromAbi(): Promise<Buffer> {
  const dir = path.join(await tempDir('dash-fails-from-abi'), 'src');
  await cp(fixture('fails-from-abi'), dir, { recursive: true });
  const c = path.join(dir, 'failsfromabi.c');
  await writeFile(c, (await readFile(c, 'utf8')).replace(/#define BROKEN_FROM_ABI \d+/, `#define BROKEN_FROM_ABI ${abi(k61)}`));
  return tarOf(dir);
}

/** examples/hello, each kernel's build 3 s longer (a PRE_BUILD sleep): the page, polling every 2 s, sees it move */
async function slowHello(): Promise<Buffer> {
  const dir = path.join(await tempDir('dash-hello'), 'src');
  await cp(path.join(packageRoot, 'examples', 'hello'), dir, { recursive: true });
  await writeFile(path.join(dir, 'slow.sh'), '#!/bin/sh\nsleep 3\n', { mode: 0o755 });
  await writeFile(path.join(dir, 'dkms.conf'), `${await readFile(path.join(dir, 'dkms.conf'), 'utf8')}PRE_BUILD="slow.sh"\n`);
  return tarOf(dir);
}

async function register(name: string, tar: Buffer): Promise<void> {
  const put = await call('PUT', `/api/v1/modules/${name}`, submit, tar, { 'Content-Type': 'application/gzip' });
  expect(put.status, put.text).toBe(201);
}

async function submitBuild(module: string): Promise<string> {
  const sub = await call('POST', '/api/v1/builds', submit, JSON.stringify({ module, kernels: KERNELS.join(',') }));
  expect(sub.status, sub.text).toBe(202);
  return (sub.json as { id: string }).id;
}

/** Waits for the build's `end` event (the events stream closes after it). */
async function buildEnd(id: string): Promise<{ state: string; exitCode: number }> {
  const events = await call('GET', `/api/v1/builds/${id}/events`, read);
  return JSON.parse(/event: end\ndata: (.*)$/m.exec(events.text)?.[1] ?? '{}') as { state: string; exitCode: number };
}

/** the page's state of a cell from a result, as report.html and the page fold the load check in */
const stateOf = (r: Pick<ResultRow, 'verdict' | 'load'>) => (r.verdict !== 'built' || !r.load ? r.verdict : r.load === 'loaded' ? 'loaded' : r.load);

/** What the database holds, read over the API: the newest result of each (module, kernel) of these builds. */
async function expectedCells(buildIds: string[]): Promise<Array<{ module: string; kernel: string; verdict: string }>> {
  const newest = new Map<string, ResultRow>();
  for (const id of buildIds) {
    const r = await call('GET', `/api/v1/builds/${id}`, read);
    expect(r.status, r.text).toBe(200);
    for (const row of (r.json as { results: ResultRow[] }).results) {
      const key = `${row.module}\u0000${row.kernel}`;
      const have = newest.get(key);
      if (!have || have.at <= row.at) newest.set(key, row);
    }
  }
  return [...newest.values()].map((r) => ({ module: r.module, kernel: r.kernel, verdict: stateOf(r) })).sort(byPair);
}

interface Opened {
  page: Page;
  /** console errors and warnings, page errors and CSP violations: the pages must cause none */
  problems: string[];
}

async function newPage(viewport = { width: 1280, height: 900 }): Promise<Opened> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // tsconfig has no DOM types: scripts that run in the page are given as text
  await page.addInitScript(`document.addEventListener('securitypolicyviolation', (e) => console.error('csp violation: ' + e.violatedDirective + ' ' + e.blockedURI));`);
  return { page, problems };
}

/** Logs in through the form as a person does: GET / sends to /login, the token typed in, submitted. */
async function logIn(o: Opened, token: string): Promise<void> {
  const first = await o.page.goto(`${serve.url}/`);
  expect(new URL(o.page.url()).pathname).toBe('/login');
  expect(first?.headers()['content-security-policy']).toBe(LOGIN_CSP);
  await o.page.locator('#token').fill(token);
  const [landed] = await Promise.all([
    o.page.waitForResponse((r) => new URL(r.url()).pathname === '/' && r.request().method() === 'GET'),
    o.page.locator('button[type="submit"]').click(),
  ]);
  expect(landed.status()).toBe(200);
  expect(landed.headers()['content-security-policy']).toBe(DASHBOARD_CSP);
  await o.page.locator('#matrix').waitFor();
  expect(new URL(o.page.url()).pathname).toBe('/');
}

const pageCells = async (page: Page) =>
  (
    await page
      .locator('#matrix td[data-verdict]')
      .evaluateAll((tds) =>
        (tds as El[]).map((td) => ({ module: td.getAttribute('data-module') ?? '', kernel: td.getAttribute('data-kernel') ?? '', verdict: td.getAttribute('data-verdict') ?? '' })),
      )
  ).sort(byPair);

beforeAll(async () => {
  expect(abi(k61b), `setup's two 6.1 kernels ${k61b} ${k61}`).toBeLessThan(abi(k61));
  const env = await isolatedEnv('serve-dashboard');
  const state = env.KFARM_STATE_DIR as string;
  read = makeToken(state, 'reader', ['read']);
  submit = makeToken(state, 'ci', ['submit']);
  // one kernel at a time: the second build takes long enough to watch it move
  serve = await startServe(env, ['--concurrency', '1']);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  await mkdir(SHOTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await serve?.stop();
});

describe('kfarm serve: the dashboard in chromium', () => {
  let failsBuild = '';

  it(`logs in through the form; the matrix is the database's; the regression card says builds on ${k61b}, fails since ${k61}, and shows the changelog read in the background`, async () => {
    await register('failsfromabi', await failsFromAbi());
    failsBuild = await submitBuild('failsfromabi');
    expect(await buildEnd(failsBuild)).toMatchObject({ state: 'done', exitCode: 1 });

    const o = await newPage();
    const { page, problems } = o;
    await logIn(o, read);

    const want = await expectedCells([failsBuild]);
    expect(want).toEqual(
      [
        { module: 'failsfromabi', kernel: k61b, verdict: 'built' },
        { module: 'failsfromabi', kernel: k61, verdict: 'failed' },
        { module: 'failsfromabi', kernel: k612, verdict: 'built' },
      ].sort(byPair),
    );
    expect(await pageCells(page)).toEqual(want);

    const card = page.locator('#regressions article.card');
    expect(await card.count()).toBe(1);
    expect(await card.locator('.sentence').textContent()).toBe(`builds on ${k61b}, fails since ${k61}`);
    expect(await card.locator('.window .good').textContent()).toBe(k61b);
    expect(await card.locator('.window .bad').textContent()).toBe(k61);
    expect(await card.locator('.first-error').textContent()).toMatch(/failsfromabi\.c:\d+:\d+: error: #error "failsfromabi: struct changed in this 6.1 ABI"/);

    // the server reads the changelog in the background after the first model; the page shows it
    // once it is read: a notice to reload (a regression's changelog is part of its key), which a
    // person clicks (or the page reloads itself when idle)
    const started = Date.now();
    const atFirst = await card.locator('.changelog .version').count();
    expect(atFirst).toBe(0); // the first model is what starts the read
    await expect
      .poll(
        async () => {
          if (await page.locator('#stale').isVisible()) await Promise.all([page.waitForEvent('load'), page.locator('#reload').click()]);
          return card.locator('.changelog .version').count();
        },
        { timeout: 60_000, interval: 500 },
      )
      .toBeGreaterThan(0);
    console.log(`changelog entries on the first page: ${atFirst}; on the card after ${Date.now() - started} ms`);
    // it is the changelog of the first bad kernel's headers, as the API reads it
    const api = await call('GET', '/api/v1/modules/failsfromabi/regressions/changelog?release=debian-12&arch=amd64&flavour=amd64&line=6.1', read);
    expect(api.status, api.text).toBe(200);
    const changelog = api.json as { firstBad: { version?: string }; entries: Array<{ version: string }> };
    expect(changelog.entries[0]?.version).toMatch(/^6\.1\.\d+-\d+/);
    expect(changelog.entries[0]?.version).toBe(changelog.firstBad.version);
    expect(await card.locator('.changelog .version').allTextContents()).toEqual(changelog.entries.map((e) => e.version));
    expect(await card.locator('.changelog pre').first().isVisible()).toBe(true);
    expect(await card.locator('.changelog pre').first().textContent()).not.toBe('');
    await page.screenshot({ path: path.join(SHOTS, 'serve-dashboard.png'), fullPage: true });
    expect(problems).toEqual([]);
    await page.context().close();
  }, 240_000);

  it('a second module: the page says reload for it; its build moves the live section without a reload; its results fill the matrix in place', async () => {
    const o = await newPage();
    const { page, problems } = o;
    await logIn(o, read);
    expect(await page.locator('#builds-none').isVisible()).toBe(true);
    await register('hello', await slowHello());
    // a module the page has no row for: the notice; a click on it makes the page again with the row
    await expect.poll(() => page.locator('#stale').isVisible(), { timeout: 10_000 }).toBe(true);
    await Promise.all([page.waitForEvent('load'), page.locator('#reload').click()]);
    expect(await page.locator('#matrix tbody tr[data-module="hello"] td.none').count()).toBe(KERNELS.length);
    await page.evaluate(`window.kfarmMarker = 'same page'`);

    const id = await submitBuild('hello');
    const seen: string[] = [];
    const snapshot = () =>
      page.evaluate<string>(
        `(() => { const b = document.querySelector('#builds li[data-build="${id}"] .done'); const w = document.querySelector('#workers tr[data-state="live"] td.running'); return [b ? b.textContent : '-', ...['waiting', 'active', 'failed'].map((k) => document.getElementById('q-' + k).textContent), w ? w.textContent : 'no worker'].join(' | '); })()`,
      );
    let ended = false;
    const end = buildEnd(id).then((e) => {
      ended = true;
      return e;
    });
    const started = Date.now();
    while (!ended) {
      const s = await snapshot();
      if (seen.at(-1) !== s) seen.push(s);
      await new Promise((r) => setTimeout(r, 150));
    }
    expect(await end).toMatchObject({ state: 'done', exitCode: 0 });
    const took = Date.now() - started;
    console.log(`hello on ${KERNELS.length} kernels, one at a time: ${took} ms; the live section showed:\n${seen.join('\n')}`);
    // while it ran: the build in flight with its cells done out of those planned, one kernel at a time
    const inFlight = seen.filter((s) => !s.startsWith('-')).map((s) => s.split(' | '));
    const done = inFlight.map((s) => s[0] ?? '').filter((d) => d !== `0 / 0`);
    expect(new Set(done).size, seen.join('\n')).toBeGreaterThanOrEqual(2);
    for (const d of done) expect(d).toMatch(new RegExp(`^[0-${KERNELS.length - 1}] / ${KERNELS.length}$`));
    const counts = done.map((d) => Number(d.split(' / ')[0]));
    expect(counts).toEqual([...counts].sort((a, b) => a - b)); // it only moves forward
    for (const [d, waiting, active, failed] of inFlight) {
      if (d === '0 / 0') continue;
      // not "active <= 1": a kernel whose job ended counts as running until its results are kept, while
      // the next job already runs (the feed has no event between them), so active can briefly read 2
      expect(Number(active)).toBeLessThanOrEqual(2);
      expect(Number(waiting) + Number(active) + Number(d?.split(' / ')[0])).toBe(KERNELS.length);
      expect(failed).toBe('0');
    }
    expect(inFlight.some(([, , active]) => active === '1')).toBe(true);
    // the farm's one worker (local mode: this serve process, --concurrency 1) ran the build's kernels one at a time, and said so live
    const workerRunning = seen.map((s) => s.split(' | ')[4]);
    expect(workerRunning, seen.join('\n')).toContain('1 / 1');
    expect(
      workerRunning.every((w) => w === '0 / 1' || w === '1 / 1' || w === '2 / 1'),
      seen.join('\n'),
    ).toBe(true);

    // done: the build leaves the live section, its cells are the database's, all without a reload
    await expect.poll(() => page.locator('#builds-none').isVisible(), { timeout: 10_000 }).toBe(true);
    const want = await expectedCells([failsBuild, id]);
    expect(want.filter((c) => c.module === 'hello').map((c) => c.verdict)).toEqual(KERNELS.map(() => 'built'));
    await expect.poll(() => pageCells(page), { timeout: 10_000 }).toEqual(want);
    expect(await page.locator('#q-active').textContent()).toBe('0');
    expect(await page.locator('#q-waiting').textContent()).toBe('0');
    // the worker row: live, running nothing now, holding setup's kernels; the API says the same (and is read-scoped)
    const row = page.locator('#workers tr');
    expect(await row.count()).toBe(1);
    expect(await row.getAttribute('data-state')).toBe('live');
    await expect.poll(() => row.locator('td.running').textContent(), { timeout: 10_000 }).toBe('0 / 1');
    for (const k of KERNELS) expect(await row.locator('td.images').textContent()).toContain(k);
    const api = await call('GET', '/api/v1/workers', read);
    expect(api.status, api.text).toBe(200);
    const workers = (api.json as { workers: Array<{ state: string; running: number; concurrency: number; images: Array<{ kernels: string[] }> }> }).workers;
    expect(workers.map((w) => [w.state, w.running, w.concurrency])).toEqual([['live', 0, 1]]);
    expect(workers[0]?.images.flatMap((i) => i.kernels)).toEqual(expect.arrayContaining(KERNELS));
    expect((await apiCall(serve.url, 'GET', '/api/v1/workers', undefined)).status).toBe(401);
    expect(await page.locator('#stale').isVisible()).toBe(false);
    expect(await page.evaluate<string>('window.kfarmMarker')).toBe('same page');
    expect(problems).toEqual([]);
    await page.context().close();
  }, 240_000);

  it('fits a 390 px wide phone: the body does not scroll sideways (after a wrong token, which the form refuses)', async () => {
    const o = await newPage({ width: 390, height: 844 });
    const { page, problems } = o;
    await page.goto(`${serve.url}/`);
    await page.locator('#token').fill(`${read}x`);
    const [refused] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.locator('button[type="submit"]').click()]);
    expect(refused.status()).toBe(401);
    expect(await page.locator('.error[role="alert"]').textContent()).toBe('unknown token');
    expect((await page.context().cookies()).map((c) => c.name)).toEqual([]);
    // the refused page's 401 is the only console error chromium reports
    expect(problems.every((p) => p.includes('401'))).toBe(true);
    problems.length = 0;
    await logIn(o, read);
    expect((await page.context().cookies()).map((c) => [c.name, c.httpOnly, c.sameSite])).toEqual([['kfarm_token', true, 'Strict']]);
    const widths = await page.evaluate<{ doc: number; body: number; inner: number }>(
      '({ doc: document.documentElement.scrollWidth, body: document.body.scrollWidth, inner: window.innerWidth })',
    );
    expect(widths.inner).toBe(390);
    expect(widths.doc).toBeLessThanOrEqual(390);
    expect(widths.body).toBeLessThanOrEqual(390);
    await page.screenshot({ path: path.join(SHOTS, 'serve-dashboard-phone.png'), fullPage: true });
    expect(problems).toEqual([]);
    await page.context().close();
  });
});

/** What the tests read of a page element (tsconfig has no DOM types). */
interface El {
  getAttribute(name: string): string | null;
}

const byPair = (a: { module: string; kernel: string }, b: { module: string; kernel: string }) => `${a.module}\u0000${a.kernel}`.localeCompare(`${b.module}\u0000${b.kernel}`);
