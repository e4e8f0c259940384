import { describe, expect, it } from 'vitest';
import type { ResultRow } from '../../src/service/farm-db.js';
import { regressionEntry, reportRegressions, reportWindows } from '../../src/service/findings/report-regressions.js';
import type { ChangelogRequest, HeadersChangelog } from '../../src/service/regressions/headers-changelog.js';

/**
 * A farm build's report carries the regression windows of the kernel series it touched, judged
 * over the farm's history of the same module version, with the Debian changelog between the
 * last good and the first bad kernel when it can be read.
 */

const K55 = '6.1.0-55-amd64';
const K56 = '6.1.0-56-amd64';
const K57 = '6.1.0-57-amd64';
const K58 = '6.1.0-58-amd64';
const K612 = '6.12.118+deb12-amd64';
const CLOUD56 = '6.1.0-56-cloud-amd64';
const CLOUD57 = '6.1.0-57-cloud-amd64';

let builds = 0;
function build(cells: Array<[string, ResultRow['verdict'], Partial<ResultRow>?]>, common: Partial<ResultRow> = {}): ResultRow[] {
  builds++;
  const buildId = `b-2026110100${String(builds).padStart(4, '0')}-abcdef`;
  const at = new Date(Date.UTC(2026, 10, 1, builds)).toISOString();
  return cells.map(([kernel, verdict, extra]) => ({
    buildId,
    module: 'hello',
    version: '1.0',
    kernel,
    release: 'debian-12',
    arch: 'x86_64',
    flavour: kernel.includes('-cloud-') ? 'cloud-amd64' : 'amd64',
    verdict,
    at,
    ...(verdict === 'failed' ? { reason: 'make-failed', firstError: `hello.c:3:1: error: ${kernel} broke it` } : {}),
    ...common,
    ...extra,
  }));
}

const changelogOf = (request: ChangelogRequest): HeadersChangelog => ({
  ...(request.lastGood ? { lastGood: { kernel: request.lastGood, version: request.versions?.lastGood ?? '6.1.150-1' } } : {}),
  firstBad: { kernel: request.firstBad, version: request.versions?.firstBad ?? '6.1.151-1' },
  source: { image: `kfarm/debian-12:${request.firstBad}`, path: `/usr/share/doc/linux-headers-${request.firstBad}/changelog.Debian.gz` },
  entries: [
    { package: 'linux', version: '6.1.151-1', distribution: 'bookworm-security', urgency: 'high', body: ['  * struct changed'], maintainer: 'A <a@b>', date: 'Thu, 1 Jan 2026' },
  ],
  omittedEntries: 0,
  omittedLines: 0,
  complete: true,
});

describe('reportWindows: the windows a farm build report carries', () => {
  it('a series that built before and fails on this build is broken: last good, first bad, first error, sentence; an ok series is left out', () => {
    const before = build([
      [K55, 'built'],
      [K56, 'built'],
      [K612, 'built'],
    ]);
    const rows = build([
      [K57, 'failed'],
      [K612, 'built'],
    ]);
    const windows = reportWindows(before, rows);
    expect(windows).toHaveLength(1);
    const entry = regressionEntry(windows[0] as (typeof windows)[0]);
    expect(entry).toMatchObject({
      module: 'hello',
      version: '1.0',
      release: 'debian-12',
      arch: 'x86_64',
      flavour: 'amd64',
      line: '6.1',
      check: 'build',
      state: 'broken',
      lastGood: K56,
      firstBad: K57,
      firstError: `hello.c:3:1: error: ${K57} broke it`,
      reason: 'make-failed',
      buildId: rows[0]?.buildId,
      sentence: `builds on ${K56}, fails since ${K57}`,
    });
  });

  it('keeps only the series this build touched: an open regression of another flavour is not this report’s', () => {
    const before = build([
      [CLOUD56, 'built'],
      [CLOUD57, 'failed'],
      [K56, 'built'],
    ]);
    const rows = build([[K57, 'built']]);
    expect(reportWindows(before, rows)).toEqual([]);
  });

  it("judges this build's module version only: another version's builds do not make this one's failure a regression", () => {
    const before = build(
      [
        [K55, 'built'],
        [K56, 'built'],
      ],
      { version: '0.9' },
    );
    const rows = build([[K57, 'failed']]);
    const [only] = reportWindows(before, rows);
    expect(only?.window.state).toBe('never-built');
    expect(regressionEntry(only as NonNullable<typeof only>).sentence).toBe(`fails on every kernel since ${K57} (never built)`);
  });

  it("counts a resumed build's rows recorded before once, as its own", () => {
    const rows = build([
      [K56, 'built'],
      [K57, 'failed'],
    ]);
    const windows = reportWindows(rows, rows);
    expect(windows.map((w) => [w.window.state, w.window.lastGood, w.window.firstBad])).toEqual([['broken', K56, K57]]);
  });

  it('gives open regressions first, then never-built, then fixed; load windows count as build windows do', () => {
    const before = build([
      [K55, 'built', { load: 'loaded' }],
      [K56, 'failed'],
      [CLOUD56, 'failed'],
    ]);
    const rows = build([
      [K57, 'built', { load: 'load-failed', firstError: 'hello: Unknown symbol foo (err -2)' }],
      [CLOUD57, 'failed'],
    ]);
    const entries = reportWindows(before, rows).map((w) => regressionEntry(w));
    expect(entries.map((e) => [e.flavour, e.check, e.state])).toEqual([
      ['amd64', 'load', 'broken'],
      ['cloud-amd64', 'build', 'never-built'],
      ['amd64', 'build', 'fixed'],
    ]);
    expect(entries[0]).toMatchObject({ sentence: `loads on ${K55}, load-failed since ${K57}`, firstError: 'hello: Unknown symbol foo (err -2)' });
    expect(entries[2]).toMatchObject({ sentence: `builds again since ${K57} (failed on ${K56})`, fixedIn: K57, lastBad: K56 });
  });
});

describe('reportRegressions: with the changelog between the two kernels', () => {
  it("reads a broken window's changelog with the farm's headers versions; a fixed window has none", async () => {
    const before = build([
      [K55, 'failed'],
      [K56, 'built'],
    ]);
    const rows = build([[K57, 'failed']]);
    const asked: ChangelogRequest[] = [];
    const versions: Record<string, string> = { [K56]: '6.1.150-1', [K57]: '6.1.151-1' };
    const regressions = await reportRegressions(before, rows, {
      readChangelog: (r) => {
        asked.push(r);
        return Promise.resolve(changelogOf(r));
      },
      headersVersion: (k) => versions[k],
    });
    expect(asked).toEqual([{ release: 'debian-12', flavour: 'amd64', lastGood: K56, firstBad: K57, versions: { lastGood: '6.1.150-1', firstBad: '6.1.151-1' } }]);
    expect(regressions).toHaveLength(1);
    expect(regressions[0]?.changelog).toMatchObject({ complete: true, entries: [{ version: '6.1.151-1', body: ['  * struct changed'] }] });

    const fixed = await reportRegressions([...before, ...rows], build([[K58, 'built']]), {
      readChangelog: () => Promise.reject(new Error('not asked')),
    });
    expect(fixed.map((r) => [r.state, r.changelog])).toEqual([['fixed', undefined]]);
  });

  it('a changelog that cannot be read is said in its note; the regression is still reported', async () => {
    const before = build([[K56, 'built']]);
    const rows = build([[K57, 'failed']]);
    const regressions = await reportRegressions(before, rows, { readChangelog: () => Promise.reject(new Error('connect ENOENT /var/run/docker.sock')) });
    expect(regressions[0]).toMatchObject({ state: 'broken', sentence: `builds on ${K56}, fails since ${K57}` });
    expect(regressions[0]?.changelog).toMatchObject({
      lastGood: { kernel: K56 },
      firstBad: { kernel: K57 },
      entries: [],
      complete: false,
      note: 'the changelog between them could not be read: connect ENOENT /var/run/docker.sock',
    });
  });

  it('reads at most maxReads changelogs (each is a container); the rest say where to read them', async () => {
    const before = build([
      [K56, 'built'],
      [CLOUD56, 'built'],
    ]);
    const rows = build([
      [K57, 'failed'],
      [CLOUD57, 'failed'],
    ]);
    let reads = 0;
    const regressions = await reportRegressions(before, rows, {
      readChangelog: (r) => {
        reads++;
        return Promise.resolve(changelogOf(r));
      },
      maxReads: 1,
    });
    expect(regressions.map((r) => [r.flavour, r.check, r.state])).toEqual([
      ['amd64', 'build', 'broken'],
      ['cloud-amd64', 'build', 'broken'],
    ]);
    expect(reads).toBe(1);
    expect(regressions[0]?.changelog?.complete).toBe(true);
    expect(regressions[1]?.changelog?.note).toMatch(/not read: a build reads at most 1 changelogs \(GET \/api\/v1\/modules\/hello\/regressions\/changelog gives it\)/);
  });
});
