import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XMLParser } from 'fast-xml-parser';
import { packageRoot } from '../../src/paths.js';
import { run } from '../../src/process/run.js';
import { renderHtml } from '../../src/report/html.js';
import type { BuildReport } from '../../src/report/report.js';
import { sampleReport } from '../fixtures/junit/sample-report.js';
import { debian12Kernels, example, fixture, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';

/**
 * report.html as a person sees it: Debian's chromium (no browser downloaded) driven by
 * playwright-core opens the report.html of a real build of three modules (one builds, one
 * fails on 6.12, one is excluded from 6.12) on two debian-12 kernels. Screenshots go to
 * test-output/ beside the repository.
 */
const CHROMIUM = '/usr/bin/chromium';
const SHOTS = path.join(packageRoot, 'test-output');

let browser: Browser;
let out: string;
let report: BuildReport;
let k612: string;

async function open(file: string): Promise<{ page: Page; requests: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(pathToFileURL(file).href);
  return { page, requests };
}

/** Cells a person can see: in a shown column and not dimmed by the verdict filter. */
const shownCells = (page: Page) => page.locator('td[data-verdict]:not([hidden]):not(.dim)').count();

beforeAll(async () => {
  const kernels = await debian12Kernels();
  k612 = kernels.k612;
  out = await tempDir('report-html');
  const env = await isolatedEnv('report-html');
  const built = await kfarm(['build', example('hello'), fixture('fails-on-612'), fixture('exclusive-61'), '--out', out, '--kernels', `${kernels.k61},${kernels.k612}`], env);
  expect(built.exitCode, built.stderr).toBe(1); // a kernel failed
  report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  await mkdir(SHOTS, { recursive: true });
}, 900_000);

afterAll(async () => {
  await browser?.close();
});

describe('report.html of a real build, in chromium', () => {
  it("has one cell per report row, shows a failed cell's first error on click, links its log, and makes no network request", async () => {
    const { page, requests } = await open(path.join(out, 'report.html'));
    expect(report.kernels.length).toBe(6);
    expect(await page.locator('td[data-verdict]').count()).toBe(report.kernels.length);
    expect(await page.locator('#shown').textContent()).toBe('6 of 6 results shown');
    expect(await page.locator('[data-count="failed"] > b:not(.letter)').textContent()).toBe(String(report.summary.failed));

    const failedRow = report.kernels.find((k) => k.verdict === 'failed');
    expect(failedRow?.kernel).toBe(k612);
    expect(failedRow?.firstError).toContain('#error "fails612 does not support kernel 6.12"');
    const cell = page.locator(`tr[data-module="fails612 0.1"] td[data-kernel="${k612}"]`);
    expect(await cell.getAttribute('data-verdict')).toBe('failed');
    expect(await cell.locator('.letter').textContent()).toBe('F');
    expect(await cell.getAttribute('title')).toContain(failedRow?.firstError);
    const error = cell.locator('.first-error');
    expect(await error.isVisible()).toBe(false);
    await cell.locator('summary').click();
    expect(await error.isVisible()).toBe(true);
    expect(await error.textContent()).toBe(failedRow?.firstError);
    // the log link is relative and leads to the log in the out dir
    const href = await cell.locator('a.log').getAttribute('href');
    expect(href).toBe(failedRow?.log.split('/').map(encodeURIComponent).join('/'));
    await access(path.join(out, decodeURIComponent(href ?? 'missing')));
    expect(fileURLToPath(await cell.locator('a.log').evaluate((a) => (a as unknown as { href: string }).href))).toBe(path.join(out, failedRow?.log ?? ''));

    const excluded = page.locator(`tr[data-module="only61 2.0"] td[data-kernel="${k612}"]`);
    expect(await excluded.getAttribute('data-verdict')).toBe('excluded');
    expect(await excluded.locator('.letter').textContent()).toBe('X');

    await page.screenshot({ path: path.join(SHOTS, 'report-html.png'), fullPage: true });
    // the page itself and nothing else
    expect(requests).toEqual([pathToFileURL(path.join(out, 'report.html')).href]);
    await page.close();
  });

  it('the verdict filter shows only matching cells and the rows that hold them', async () => {
    const { page, requests } = await open(path.join(out, 'report.html'));
    await page.selectOption('#f-verdict', 'failed');
    expect(await shownCells(page)).toBe(1);
    expect(await page.locator('#shown').textContent()).toBe('1 of 6 results shown');
    expect(
      await page.locator('tbody tr:not([hidden])').evaluateAll((rows: { getAttribute(name: string): string | null }[]) => rows.map((r) => r.getAttribute('data-module'))),
    ).toEqual(['fails612 0.1']);
    await page.selectOption('#f-verdict', 'built');
    expect(await shownCells(page)).toBe(report.summary.built);
    await page.selectOption('#f-verdict', '');
    expect(await shownCells(page)).toBe(6);
    expect(await page.locator('tbody tr:not([hidden])').count()).toBe(3);
    expect(requests.length).toBe(1);
    await page.close();
  });
});

describe('junit.xml of the same build', () => {
  it("validates against the JUnit schema and carries make's error and the log's tail in the failure", async () => {
    const file = path.join(out, 'junit.xml');
    const lint = await run('xmllint', ['--noout', '--schema', path.join(packageRoot, 'test', 'fixtures', 'junit', 'junit.xsd'), file], { allowFailure: true });
    expect(lint.exitCode, lint.stderr).toBe(0);
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (n) => ['testsuite', 'testcase'].includes(n) }).parse(await readFile(file, 'utf8')) as {
      testsuites: {
        tests: string;
        failures: string;
        testsuite: Array<{ testcase: Array<{ classname: string; name: string; failure?: { message: string; '#text': string }; skipped?: { message: string } }> }>;
      };
    };
    const cases = doc.testsuites.testsuite.flatMap((s) => s.testcase);
    expect(cases.length).toBe(report.kernels.length);
    expect([doc.testsuites.tests, doc.testsuites.failures]).toEqual(['6', '1']);
    const failed = cases.find((c) => c.failure);
    expect(failed?.classname).toBe('fails612.debian-12-amd64');
    expect(failed?.name).toBe(k612);
    expect(failed?.failure?.message).toContain('#error "fails612 does not support kernel 6.12"');
    expect(failed?.failure?.['#text']).toMatch(/--- last lines of logs\/fails612-0\.1\/.*\.log ---\n[\s\S]*Error 2/);
    expect(cases.find((c) => c.skipped)?.skipped?.message).toMatch(/^build-exclusive: BUILD_EXCLUSIVE_KERNEL=/);
  });
});

describe('report.html filters across releases and arches, in chromium', () => {
  // the sample report has two releases, two arches and every cell state, load verification included
  it('filters by release, arch and verdict; group headers follow the columns shown', async () => {
    const dir = await tempDir('report-html-sample');
    const file = path.join(dir, 'report.html');
    const sample = sampleReport();
    await writeFile(file, renderHtml(sample));
    const { page, requests } = await open(file);
    expect(await page.locator('td[data-verdict]').count()).toBe(sample.kernels.length);
    expect(await page.locator('th.group').allTextContents()).toEqual(['debian-12 / amd64', 'debian-13 / arm64']);

    await page.selectOption('#f-release', 'debian-13');
    expect(await shownCells(page)).toBe(2);
    expect(await page.locator('th.group:not([hidden])').allTextContents()).toEqual(['debian-13 / arm64']);
    expect(await page.locator('th.kernel:not([hidden])').allTextContents()).toEqual(['7.3.4+deb13-arm64']);

    await page.selectOption('#f-release', '');
    await page.selectOption('#f-arch', 'amd64');
    expect(await shownCells(page)).toBe(5);
    expect(await page.locator('th.group:not([hidden])').evaluate((th) => (th as unknown as { colSpan: number }).colSpan)).toBe(3);

    await page.selectOption('#f-verdict', 'load-failed');
    expect(await shownCells(page)).toBe(1);
    const cell = page.locator('td[data-verdict="load-failed"]');
    expect(await cell.locator('.letter').textContent()).toBe('LF');
    await cell.locator('summary').click();
    expect(await cell.locator('.first-error').textContent()).toBe('hello: Unknown symbol foo (err -2)');
    await page.selectOption('#f-arch', '');
    await page.selectOption('#f-verdict', '');
    expect(await shownCells(page)).toBe(sample.kernels.length);
    // strangers' markup in the failed cell stayed text
    expect(await page.locator('script').count()).toBe(1);
    await page.screenshot({ path: path.join(SHOTS, 'report-html-load.png'), fullPage: true });
    expect(requests).toEqual([pathToFileURL(file).href]);
    await page.close();
  });
});
