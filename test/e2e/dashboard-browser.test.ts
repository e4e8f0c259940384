import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';
import { openFarmDb } from '../../src/service/db/open-farm-db.js';
import type { FarmDb, ResultRow } from '../../src/service/farm-db.js';
import { DASHBOARD_CSP, renderDashboard } from '../../src/service/dashboard/render-dashboard.js';
import type { DashboardLive, DashboardModel } from '../../src/service/dashboard/dashboard-model.js';
import { readDashboardModel } from '../../src/service/dashboard/read-dashboard-model.js';
import { fixtureChangelog, HOSTILE, K56, K57, K57ARM, seedFarmDb } from '../fixtures/dashboard/dashboard-fixture.js';

/**
 * The dashboard as a person sees it: Debian's chromium driven by playwright-core loads the page
 * from a node:http server that answers as kfarm serve will: the page with DASHBOARD_CSP as its
 * header, /api/v1/dashboard as JSON read from a real farm database (SQLite, seeded with two
 * builds' results) and the regression view at each request, both only with the kfarm_token
 * cookie. The tests write results into the database while the page is open. Screenshots go to
 * test-output/.
 */
const CHROMIUM = '/usr/bin/chromium';
const SHOTS = path.join(packageRoot, 'test-output');
const TOKEN = 'kfarm_test_token_0123456789';

let browser: Browser;
let server: Server;
let origin: string;
let root: string;
let db: FarmDb;
let ids: { b1: string; b2: string };
let live: DashboardLive;
/** a change to the model after it was read (links a buggy server might send) */
let tamper: ((m: DashboardModel) => void) | undefined;
let polls = 0;
/** the page's idle reload, seconds */
let idleReload = 30;
/** the server has read the 6.1.0-57 changelog (it reads in the background) */
let changelogRead = true;

const model = (): DashboardModel => {
  const m = readDashboardModel(db, { now: new Date().toISOString(), live, changelog: (open) => (changelogRead && open.window.firstBad === K57 ? fixtureChangelog() : undefined) });
  tamper?.(m);
  return m;
};

/** A new database with the fixture's rows, the fixture's queue, no tampering. */
async function freshFarm(): Promise<void> {
  db?.close();
  db = openFarmDb(path.join(await mkdtemp(path.join(root, 'db-')), 'farm.db'));
  ids = seedFarmDb(db);
  live = {
    queue: { waiting: 3, active: 2, delayed: 0, failed: 1 },
    workers: [
      {
        worker: `worker-1${HOSTILE}:7`,
        host: `worker-1${HOSTILE}`,
        running: 2,
        concurrency: 4,
        images: [{ name: 'debian-12', arch: 'x86_64', kernels: [K56, K57] }],
        verify: [],
        lastSeen: '2026-12-08T00:00:00Z',
        state: 'live',
      },
    ],
    builds: [{ id: 'b-3', module: 'hello', done: 3, total: 8 }],
  };
  tamper = undefined;
  idleReload = 30;
  changelogRead = true;
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'kfarm-dashboard-'));
  server = createServer((req, res) => {
    const authed = (req.headers.cookie ?? '').split(/;\s*/).includes(`kfarm_token=${TOKEN}`) || req.headers.authorization === `Bearer ${TOKEN}`;
    if (!authed) {
      res.writeHead(401, { 'content-type': 'text/plain' }).end('no token');
      return;
    }
    if (req.url === '/') {
      res
        .writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': DASHBOARD_CSP, 'cache-control': 'no-store' })
        .end(renderDashboard(model(), { idleReloadSeconds: idleReload }));
    } else if (req.url === '/api/v1/dashboard') {
      polls++;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(model()));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  await mkdir(SHOTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
  db?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

interface Opened {
  page: Page;
  /** console errors, page errors and CSP violations: the page must cause none */
  problems: string[];
  requests: string[];
}

async function open(viewport = { width: 1280, height: 900 }): Promise<Opened> {
  const context = await browser.newContext({ viewport });
  await context.addCookies([{ name: 'kfarm_token', value: TOKEN, url: origin, httpOnly: true, sameSite: 'Strict' }]);
  const page = await context.newPage();
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => requests.push(r.url()));
  // tsconfig has no DOM types: scripts that run in the page are given as text
  await page.addInitScript(`document.addEventListener('securitypolicyviolation', (e) => console.error('csp violation: ' + e.violatedDirective + ' ' + e.blockedURI));`);
  const response = await page.goto(`${origin}/`);
  expect(response?.headers()['content-security-policy']).toBe(DASHBOARD_CSP);
  return { page, problems, requests };
}

/** Waits until the page's script has fetched the model at least `n` more times. */
async function pollsPass(n: number): Promise<void> {
  const target = polls + n;
  await expect.poll(() => polls, { timeout: 15_000, interval: 100 }).toBeGreaterThanOrEqual(target);
}

/** What the database says each matrix cell must show: the newest result per (module, kernel), load folded in as report.html does. */
function expectedCells(): Array<{ module: string; kernel: string; verdict: string }> {
  const newest = new Map<string, ResultRow>();
  for (const m of db.modules.list()) for (const r of db.results.history(m.name)) newest.set(`${r.module}\u0000${r.kernel}`, r); // history is oldest first
  return [...newest.values()].map((r) => ({
    module: r.module,
    kernel: r.kernel,
    verdict: r.verdict === 'built' && r.load ? (r.load === 'loaded' ? 'loaded' : r.load) : r.verdict,
  }));
}

const result = (buildId: string, module: string, kernel: string, verdict: ResultRow['verdict'], extra: Partial<ResultRow> = {}): ResultRow => ({
  buildId,
  module,
  version: module === 'fails' ? '0.2' : '1.0',
  kernel,
  release: 'debian-12',
  arch: kernel.endsWith('arm64') ? 'aarch64' : 'x86_64',
  flavour: kernel.endsWith('arm64') ? 'arm64' : 'amd64',
  verdict,
  at: new Date().toISOString(),
  ...extra,
});

describe('the dashboard in chromium', () => {
  it('matches the database: one matrix cell per module and kernel result with its newest verdict; the regression card shows its window and changelog; nothing else is loaded', async () => {
    await freshFarm();
    const { page, problems, requests } = await open();
    const cells = await page.locator('#matrix td[data-verdict]').evaluateAll(readCells);
    expect(cellsOf(cells).sort(byPair)).toEqual(expectedCells().sort(byPair));
    expect(cells.length).toBe(7); // the hostile module on 6.1.0-56 failed, then built: its newest only
    expect(cells.find((c) => c.module === HOSTILE && c.kernel === K56)).toEqual({ module: HOSTILE, kernel: K56, verdict: 'built', letter: 'B' });
    // every (module, kernel) without a result is an empty cell: modules × kernels in all
    expect(await page.locator('#matrix tbody td').count()).toBe(db.modules.list().length * db.kernels.list().length);
    expect(await page.locator('#matrix th.group').allTextContents()).toEqual(['debian-12 / amd64', 'debian-12 / arm64', 'debian-13 / amd64']);
    expect(await page.locator('#matrix th.kernel.gone').allTextContents()).toEqual(['6.12.57+deb13-amd64']);
    // the hostile module name is a row label, not an image
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator(`#matrix tbody tr[data-module="fails"] th`).textContent()).toBe('fails 0.2');
    expect(await page.locator('#matrix tbody tr th').first().textContent()).toBe('fails 0.2'); // the regressed module first
    expect(await page.locator('#matrix tbody tr').nth(1).locator('th').textContent()).toBe(`${HOSTILE} 0.1`);

    const failed = page.locator(`#matrix td[data-module="fails"][data-kernel="${K57}"]`);
    await failed.locator('summary').click();
    expect(await failed.locator('.first-error').textContent()).toBe('fails.c:3:2: error: <script>alert(1)</script> implicit declaration');
    expect(await failed.locator('a.log').first().getAttribute('href')).toBe(`/api/v1/builds/${ids.b2}/artifacts/logs/${K57}.log`);

    const card = page.locator('#regressions article.card');
    expect(await card.count()).toBe(1);
    expect(await card.locator('.sentence').textContent()).toBe(`builds on ${K56}, fails since ${K57}`);
    expect(await card.locator('.window .good').textContent()).toBe(K56);
    expect(await card.locator('.window .bad').textContent()).toBe(K57);
    expect(await card.locator('.changelog .version').allTextContents()).toEqual(['6.1.158-1', '6.1.157-1']);
    expect(await card.locator('.changelog pre').first().textContent()).toBe(`* New upstream stable update:\n  - mm: rename ${HOSTILE} helper`);
    expect(await card.locator('.changelog pre').first().isVisible()).toBe(true);
    // regressions come before the matrix on the page
    const top = (sel: string) => page.locator(sel).evaluate((e) => (e as unknown as El).getBoundingClientRect().top);
    expect(await top('#regressions')).toBeLessThan(await top('#latest'));

    await pollsPass(1);
    await expect.poll(() => page.locator('#conn').textContent(), { timeout: 10_000 }).toBe('live');
    await page.screenshot({ path: path.join(SHOTS, 'dashboard.png'), fullPage: true });
    expect(problems).toEqual([]);
    expect(requests.every((u) => u.startsWith(`${origin}/`))).toBe(true);
    expect([...new Set(requests)]).toEqual([`${origin}/`, `${origin}/api/v1/dashboard`]);
    await page.context().close();
  });

  it('moves live progress, counters and matrix cells in place as results reach the database, without a reload', async () => {
    await freshFarm();
    const { page, problems } = await open();
    await page.evaluate(`window.kfarmMarker = 'same page'`);
    expect(await page.locator('#q-waiting').textContent()).toBe('3');
    expect(await page.locator('#builds li .done').textContent()).toBe('3 / 8');
    const arm = page.locator(`#matrix td[data-module="fails"][data-kernel="${K57ARM}"]`);
    expect(await arm.getAttribute('data-verdict')).toBeNull();

    // a build in flight records fails on arm64 (it fails there too); the queue moves on
    const b3 = db.builds.create({ module: 'fails', sourceSha256: 'a'.repeat(64), kernels: 'new', formats: [], trigger: 'watch' }).id;
    db.results.record([result(b3, 'fails', K57ARM, 'failed', { reason: 'compile-error', firstError: `arm: ${HOSTILE}` })]);
    live = {
      queue: { waiting: 7, active: 1, delayed: 2, failed: 4 },
      workers: [
        ...live.workers,
        {
          worker: 'worker-2:9',
          host: 'worker-2',
          running: 0,
          concurrency: 2,
          images: [],
          verify: [],
          lastSeen: '2026-12-08T00:00:02Z',
          state: 'gone',
          goneSince: '2026-12-08T00:01:00Z',
        },
      ],
      builds: [{ id: b3, module: 'fails', done: 6, total: 8 }],
    };
    const before = await page.locator('#updated').textContent();

    await expect.poll(() => page.locator('#q-waiting').textContent(), { timeout: 10_000 }).toBe('7');
    expect(await page.locator('#q-failed').textContent()).toBe('4');
    expect(await page.locator('#builds li .done').textContent()).toBe('6 / 8');
    expect(await page.locator('#builds li progress').evaluate((p) => (p as unknown as { value: number }).value)).toBe(6);
    expect(await page.locator('#workers tr').count()).toBe(2);
    expect(await page.locator('#workers tr').first().locator('td').first().textContent()).toBe(`worker-1${HOSTILE}`);
    expect(await page.locator('#workers tr').first().locator('td.images').textContent()).toBe(`debian-12 x86_64: ${K56}, ${K57}`);
    expect(await page.locator('#workers tr').first().locator('td.running').textContent()).toBe('2 / 4');
    expect(await page.locator('#workers tr[data-worker="worker-2:9"]').getAttribute('data-state')).toBe('gone');
    expect(await page.locator('#workers tr[data-worker="worker-2:9"] td.state').textContent()).toBe('gone since 2026-12-08T00:01:00Z');
    expect(await arm.getAttribute('data-verdict')).toBe('failed');
    expect(await arm.locator('.letter').textContent()).toBe('F');
    await arm.locator('summary').click();
    expect(await arm.locator('.first-error').textContent()).toBe(`arm: ${HOSTILE}`);
    expect(await arm.locator('a.log').first().getAttribute('href')).toBe(`/api/v1/builds/${b3}/artifacts/logs/${K57ARM}.log`);
    expect(cellsOf(await page.locator('#matrix td[data-verdict]').evaluateAll(readCells)).sort(byPair)).toEqual(expectedCells().sort(byPair));
    expect(await page.locator(`#timelines li[data-row="0"][data-col="2"]`).getAttribute('class')).toBe('c-failed');
    expect(await page.locator('#matrix td[data-verdict]').count()).toBe(8);
    expect(await page.locator('#updated').textContent()).not.toBe(before);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('#stale').isVisible()).toBe(false);

    // a kernel new to the archive has no column yet: the page says reload
    db.kernels.observe([{ kernel: '6.1.0-58-amd64', release: 'debian-12', arch: 'amd64', flavour: 'amd64', version: '6.1.159-1' }], new Date().toISOString());
    await expect.poll(() => page.locator('#stale').isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await page.evaluate<string>('window.kfarmMarker')).toBe('same page');

    // a link that is not an /api/v1 path (a buggy or hostile server) is not made a link
    tamper = (m) => {
      const cell = m.cells.find((c) => c.module === 'hello' && c.kernel === K57ARM);
      if (cell) Object.assign(cell, { verdict: 'failed', load: undefined, at: 'tampered', links: { report: 'javascript:alert(1)', log: '/api/v1/%2e%2e/secret' } });
    };
    const helloArm = page.locator(`#matrix td[data-module="hello"][data-kernel="${K57ARM}"]`);
    await expect.poll(() => helloArm.getAttribute('data-verdict'), { timeout: 10_000 }).toBe('failed');
    expect(await helloArm.locator('a').count()).toBe(0);
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('a page nobody touches reloads itself to show a kernel new to the archive; one being read only says reload', async () => {
    await freshFarm();
    idleReload = 1;
    const { page, problems } = await open();
    await page.evaluate(`window.kfarmMarker = 'same page'`);
    expect(await page.locator('#matrix th.kernel').count()).toBe(5);
    db.kernels.observe([{ kernel: '6.1.0-58-amd64', release: 'debian-12', arch: 'amd64', flavour: 'amd64', version: '6.1.159-1' }], new Date().toISOString());
    await expect.poll(() => page.locator('#matrix th.kernel').count(), { timeout: 15_000 }).toBe(6);
    expect(await page.evaluate<string | undefined>('window.kfarmMarker')).toBeUndefined(); // a new page
    expect(await page.locator('#matrix th.kernel').allTextContents()).toContain('6.1.0-58-amd64');
    expect(await page.locator('#stale').isVisible()).toBe(false);

    // someone keeps reading (clicks within the idle time): the notice, no reload under their hands
    await page.evaluate(`window.kfarmMarker = 'same page'`);
    const clicking = setInterval(
      () =>
        void page
          .locator('h1')
          .click()
          .catch(() => undefined),
      300,
    );
    try {
      db.kernels.observe([{ kernel: '6.1.0-59-amd64', release: 'debian-12', arch: 'amd64', flavour: 'amd64', version: '6.1.160-1' }], new Date().toISOString());
      await expect.poll(() => page.locator('#stale').isVisible(), { timeout: 10_000 }).toBe(true);
      await pollsPass(2);
      expect(await page.evaluate<string>('window.kfarmMarker')).toBe('same page');
    } finally {
      clearInterval(clicking);
    }
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('a changelog the server reads after the page was made reaches the regression card', async () => {
    await freshFarm();
    changelogRead = false;
    idleReload = 1;
    const { page, problems } = await open();
    const card = page.locator('#regressions article.card');
    expect(await card.locator('.changelog .version').count()).toBe(0);
    expect(await card.locator('.changelog-note').textContent()).toBe('the changelog between them was not read');
    changelogRead = true;
    await expect.poll(() => card.locator('.changelog .version').allTextContents(), { timeout: 15_000 }).toEqual(['6.1.158-1', '6.1.157-1']);
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('a model of another schema version (kfarm serve upgraded) is not read: the page says reload', async () => {
    await freshFarm();
    const { page, problems } = await open();
    tamper = (m) => Object.assign(m, { schemaVersion: 2 });
    live = { ...live, queue: { waiting: 99, active: 0, delayed: 0, failed: 0 } };
    await expect.poll(() => page.locator('#stale').isVisible(), { timeout: 10_000 }).toBe(true);
    await pollsPass(1);
    expect(await page.locator('#q-waiting').textContent()).toBe('3');
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('fits a 390 px wide phone: the body does not scroll sideways, the matrix scrolls inside its box', async () => {
    await freshFarm();
    // a long unbroken module name, error and host name must wrap, not widen the page
    db.results.record([result(ids.b2, 'fails', K57, 'failed', { at: '2026-11-02T02:00:00Z', firstError: `fails.c:3:2: error: ${'x'.repeat(300)}` })]);
    live.workers[0]!.host = `worker-${'w'.repeat(120)}`;
    db.modules.upsert({ name: `long${'m'.repeat(150)}`, version: '1.0', sourceSha256: 'b'.repeat(64), settings: { formats: [] } });
    const { page, problems } = await open({ width: 390, height: 844 });
    await pollsPass(1);
    const widths = await page.evaluate<{ doc: number; body: number; inner: number }>(
      '({ doc: document.documentElement.scrollWidth, body: document.body.scrollWidth, inner: window.innerWidth })',
    );
    expect(widths.inner).toBe(390);
    expect(widths.doc).toBeLessThanOrEqual(390);
    expect(widths.body).toBeLessThanOrEqual(390);
    const wrap = await page.locator('.matrix-wrap').evaluate((e) => ({ client: (e as unknown as El).clientWidth, scroll: (e as unknown as El).scrollWidth }));
    expect(wrap.client).toBeLessThanOrEqual(390);
    expect(wrap.scroll).toBeGreaterThan(wrap.client); // five kernel columns and a row label do not fit: it scrolls
    const card = await page.locator('#regressions article.card').evaluate((e) => (e as unknown as El).getBoundingClientRect().width);
    expect(card).toBeLessThanOrEqual(390);
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-phone.png'), fullPage: true });
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('without the cookie the API refuses and a page already open says it is signed out', async () => {
    await freshFarm();
    const { page, problems } = await open();
    await page.context().clearCookies();
    await expect.poll(() => page.locator('#signed-out').isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await page.locator('#signed-out a').getAttribute('href')).toBe('/login');
    expect(await page.locator('#conn').getAttribute('class')).toBe('bad');
    // the 401 of the poll is the only console error chromium reports
    expect(problems.every((p) => p.includes('401'))).toBe(true);
    await page.context().close();
  });
});

/** Runs in the page: each matrix cell's module, kernel, verdict and letter. */
const readCells = (tds: unknown[]) =>
  (tds as El[]).map((td) => ({
    module: td.getAttribute('data-module'),
    kernel: td.getAttribute('data-kernel'),
    verdict: td.getAttribute('data-verdict'),
    letter: td.querySelector('.letter')?.textContent,
  }));
const cellsOf = (cells: ReturnType<typeof readCells>) => cells.map(({ module, kernel, verdict }) => ({ module, kernel, verdict }));

/** What the tests read of a page element (tsconfig has no DOM types). */
interface El {
  getAttribute(name: string): string | null;
  querySelector(selector: string): El | null;
  textContent: string | null;
  clientWidth: number;
  scrollWidth: number;
  getBoundingClientRect(): { top: number; width: number };
}

const byPair = (a: { module: string | null; kernel: string | null }, b: { module: string | null; kernel: string | null }) =>
  `${a.module}\u0000${a.kernel}`.localeCompare(`${b.module}\u0000${b.kernel}`);
