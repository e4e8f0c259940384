import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openFarmDb } from '../../src/service/db/open-farm-db.js';
import { readDashboardModel } from '../../src/service/dashboard/read-dashboard-model.js';
import { buildDashboardModel, latestCells } from '../../src/service/dashboard/build-dashboard-model.js';
import { buildLinks } from '../../src/service/dashboard/dashboard-model.js';
import { dashboardRegression } from '../../src/service/dashboard/dashboard-regression.js';
import type { ResultRow } from '../../src/service/farm-db.js';
import { openRegressions, seriesWindows } from '../../src/service/regressions/series-windows.js';
import { fixtureChangelog, fixtureModel, HOSTILE, K56, K57, K57ARM, K612, seedFarmDb } from '../fixtures/dashboard/dashboard-fixture.js';

const root = mkdtempSync(path.join(tmpdir(), 'kfarm-dashboard-model-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const row = (buildId: string, kernel: string, verdict: ResultRow['verdict'], at: string, extra: Partial<ResultRow> = {}): ResultRow => ({
  buildId,
  module: 'hello',
  version: '1.0',
  kernel,
  release: 'debian-12',
  arch: 'x86_64',
  flavour: 'amd64',
  verdict,
  at,
  ...extra,
});

describe('the dashboard model', () => {
  it('keeps the newest result per module and kernel, whatever the input order', () => {
    const rows = [
      row('b-2', K56, 'failed', '2026-11-02T00:00:00Z', { firstError: 'new' }),
      row('b-1', K56, 'built', '2026-10-01T00:00:00Z'),
      row('b-1', K57, 'built', '2026-10-01T00:00:00Z'),
    ];
    const cells = latestCells(rows);
    expect(cells.map((c) => [c.kernel, c.verdict, c.buildId, c.firstError])).toEqual([
      [K56, 'failed', 'b-2', 'new'],
      [K57, 'built', 'b-1', undefined],
    ]);
    // a tie in time: the later row (history is oldest first) wins
    expect(latestCells([row('b-1', K56, 'built', 't'), row('b-2', K56, 'failed', 't')])[0]?.buildId).toBe('b-2');
  });

  it("links a result's report, build log and, when a load check ran, its console; segments percent-encoded", () => {
    expect(buildLinks('b-1', 'hello', '6.12.57+deb13-amd64', true)).toEqual({
      report: '/api/v1/builds/b-1/report',
      log: '/api/v1/builds/b-1/artifacts/logs/6.12.57%2Bdeb13-amd64.log',
      loadLog: '/api/v1/builds/b-1/artifacts/logs/load/hello/6.12.57%2Bdeb13-amd64.log',
    });
    expect(buildLinks('b-1', 'a/b', '../x', false)).toEqual({ report: '/api/v1/builds/b-1/report', log: '/api/v1/builds/b-1/artifacts/logs/..%2Fx.log' });
    const cells = latestCells([row('b-1', K56, 'built', 't', { load: 'not-verified' }), row('b-1', K57, 'built', 't', { load: 'load-failed' })]);
    expect(cells.map((c) => c.links.loadLog !== undefined)).toEqual([false, true]);
  });

  it('gives every cell a column: a kernel only the results name joins the archive kernels with Debian arch and its first result as firstSeen', () => {
    const model = buildDashboardModel({
      generatedAt: 'now',
      modules: [],
      kernels: [],
      results: [
        row('b-2', K57ARM, 'built', '2026-11-02T00:00:00Z', { arch: 'aarch64', flavour: 'arm64' }),
        row('b-1', K57ARM, 'built', '2026-10-02T00:00:00Z', { arch: 'aarch64', flavour: 'arm64' }),
      ],
      regressions: [],
      live: { queue: { waiting: 0, active: 0, delayed: 0, failed: 0 }, workers: [], builds: [] },
    });
    expect(model.kernels).toEqual([{ kernel: K57ARM, release: 'debian-12', arch: 'arm64', flavour: 'arm64', firstSeen: '2026-10-02T00:00:00Z' }]);
    expect(model.timelines).toEqual([{ module: 'hello', entries: [{ kernel: K57ARM, verdict: 'built' }] }]);
  });

  it("orders each module's timeline by when the archive offered the kernel, an unbuilt kernel without a verdict", () => {
    const model = fixtureModel();
    const hello = model.timelines.find((t) => t.module === 'hello');
    expect(hello?.entries.map((e) => [e.kernel, e.verdict, e.load])).toEqual([
      [K612, undefined, undefined],
      [K56, 'built', 'loaded'],
      [K57, 'built', 'loaded'],
      [K57ARM, 'built', 'load-failed'],
    ]);
    expect(model.kernels.find((k) => k.kernel === K612)?.goneSince).toBe('2026-11-20T00:00:00Z');
  });

  it("turns the regression view's open window and the headers' changelog into a card's data", () => {
    const rows = [
      row('b-1', K56, 'built', '2026-10-05T01:00:00Z'),
      row('b-2', K57, 'failed', '2026-11-02T02:00:00Z', { firstError: 'fails.c:3: error: x', reason: 'compile-error' }),
    ];
    const [open] = openRegressions(seriesWindows(rows));
    if (!open) throw new Error('no open regression found');
    const entry = { package: 'linux', version: '6.1.158-1', distribution: 'bookworm-security', urgency: 'high', body: ['  * New upstream stable update'] };
    const card = dashboardRegression(open, {
      lastGood: { kernel: K56, version: '6.1.157-1' },
      firstBad: { kernel: K57, version: '6.1.158-1' },
      entries: [entry],
      omittedEntries: 0,
      omittedLines: 3,
      complete: true,
    });
    expect(card).toMatchObject({
      module: 'hello',
      kind: 'build',
      series: { release: 'debian-12', arch: 'amd64', flavour: 'amd64' },
      lastGood: K56,
      firstBad: K57,
      firstError: 'fails.c:3: error: x',
      sentence: `builds on ${K56}, fails since ${K57}`,
      since: '2026-11-02T02:00:00Z',
      changelog: [{ version: '6.1.158-1', lines: ['  * New upstream stable update'] }],
      changelogNote: '0 more entries and 3 lines not shown',
      buildId: 'b-2',
      links: { report: '/api/v1/builds/b-2/report', log: `/api/v1/builds/b-2/artifacts/logs/${K57}.log` },
    });
    expect(dashboardRegression(open).changelogNote).toBe('the changelog between them was not read');
  });

  it('reads the model from a farm database: newest cells, kernels with gone ones marked, and the open regressions the regression view finds', () => {
    const db = openFarmDb(path.join(mkdtempSync(path.join(root, 'db-')), 'farm.db'));
    try {
      const { b1, b2 } = seedFarmDb(db);
      const live = { queue: { waiting: 1, active: 0, delayed: 0, failed: 0 }, workers: [], builds: [] };
      const model = readDashboardModel(db, { now: '2026-12-08T00:00:00Z', live, changelog: (open) => (open.window.firstBad === K57 ? fixtureChangelog() : undefined) });
      expect(model.cells.map((c) => `${c.module} ${c.kernel} ${c.verdict}${c.load ? `/${c.load}` : ''} ${c.buildId === b1 ? 'b1' : c.buildId === b2 ? 'b2' : '?'}`).sort()).toEqual(
        [
          `${HOSTILE} ${K56} built b2`,
          `fails ${K56} built b1`,
          `fails ${K57} failed b2`,
          `fails ${K612} excluded b1`,
          `hello ${K56} built/loaded b1`,
          `hello ${K57} built/loaded b2`,
          `hello ${K57ARM} built/load-failed b2`,
        ].sort(),
      );
      expect(model.kernels.filter((k) => k.goneSince).map((k) => k.kernel)).toEqual([K612]);
      expect(model.kernels).toHaveLength(5);
      // hello's one arm64 kernel never loaded: not a regression (nothing loaded before it)
      expect(model.regressions.map((r) => [r.module, r.kind, r.sentence, r.changelog.length])).toEqual([['fails', 'build', `builds on ${K56}, fails since ${K57}`, 2]]);
      expect(model.regressions[0]?.links?.log).toBe(`/api/v1/builds/${b2}/artifacts/logs/${K57}.log`);
      expect(model.live).toBe(live);
    } finally {
      db.close();
    }
  });
});
