import { describe, expect, it } from 'vitest';
import type { ResultRow } from '../../src/service/farm-db.js';
import { changelogRequest } from '../../src/service/regressions/headers-changelog.js';
import { compareSeriesKernels, kernelAbi, kernelLine } from '../../src/service/regressions/kernel-order.js';
import { openRegressions, seriesWindows, type SeriesWindows } from '../../src/service/regressions/series-windows.js';
import { windowSentence } from '../../src/service/regressions/window-sentence.js';

/**
 * The regression view's judgement: from a module's result history (any order, several builds,
 * several module versions) to "builds on X, fails since Y" per kernel series and check.
 */

let clock = 0;
/** a result row; each call a minute later than the one before unless `at` is given */
function row(kernel: string, verdict: ResultRow['verdict'], extra: Partial<ResultRow> = {}): ResultRow {
  clock++;
  const flavour = extra.flavour ?? /-((?:cloud-|rt-)?(?:amd64|arm64))$/.exec(kernel)?.[1] ?? 'amd64';
  return {
    buildId: `b-${String(clock).padStart(4, '0')}`,
    module: 'hello',
    version: '1.0',
    kernel,
    release: 'debian-12',
    arch: 'x86_64',
    flavour,
    verdict,
    at: new Date(Date.UTC(2026, 10, 1, 0, clock)).toISOString(),
    ...(verdict === 'failed' ? { reason: 'compile-error', firstError: `error: ${kernel} broke` } : {}),
    ...extra,
  };
}

const only = (rows: ResultRow[]): SeriesWindows => {
  const all = seriesWindows(rows);
  expect(all).toHaveLength(1);
  return all[0]!;
};

describe('kernel order within a series', () => {
  it('orders ABIs as Debian versions: 6.1.0-9 before 6.1.0-10, +deb13 before +deb13.1 before the next upstream', () => {
    const kernels = ['6.1.0-10-amd64', '6.1.0-9-amd64', '6.1.0-57-amd64', '6.1.0-100-amd64'];
    expect(kernels.sort((a, b) => compareSeriesKernels(a, b, 'amd64'))).toEqual(['6.1.0-9-amd64', '6.1.0-10-amd64', '6.1.0-57-amd64', '6.1.0-100-amd64']);
    const trixie = ['6.12.57+deb13-amd64', '6.12.48+deb13.1-amd64', '6.12.48+deb13-amd64', '6.12.9+deb13-amd64'];
    expect(trixie.sort((a, b) => compareSeriesKernels(a, b, 'amd64'))).toEqual(['6.12.9+deb13-amd64', '6.12.48+deb13-amd64', '6.12.48+deb13.1-amd64', '6.12.57+deb13-amd64']);
  });

  it('reads the ABI and the upstream line off the flavour it is given', () => {
    expect(kernelAbi('5.10.0-35-cloud-amd64', 'cloud-amd64')).toBe('5.10.0-35');
    expect(kernelAbi('6.12.48+deb13-rt-arm64', 'rt-arm64')).toBe('6.12.48+deb13');
    expect(kernelAbi('6.1.0-0.deb11.52-amd64', 'amd64')).toBe('6.1.0-0.deb11.52');
    expect(kernelAbi('6.12.48+deb13-arm64-16k')).toBe('6.12.48+deb13');
    expect(kernelLine('6.1.0-0.deb11.52-amd64', 'amd64')).toBe('6.1');
    expect(kernelLine('6.12.118+deb12-amd64', 'amd64')).toBe('6.12');
  });
});

describe('series windows: the build check', () => {
  it('ok: every kernel built', () => {
    const s = only([row('6.1.0-56-amd64', 'built'), row('6.1.0-55-amd64', 'built'), row('6.1.0-57-amd64', 'built')]);
    expect(s.build).toMatchObject({ state: 'ok', lastGood: '6.1.0-57-amd64', oldest: '6.1.0-55-amd64', newest: '6.1.0-57-amd64', kernels: 3 });
    expect(s.build?.firstBad).toBeUndefined();
    expect(windowSentence(s.build!)).toBe('builds on every kernel from 6.1.0-55-amd64 to 6.1.0-57-amd64');
    expect(openRegressions([s])).toEqual([]);
  });

  it('broken: builds on the last good kernel, fails since the first bad one after it, with its first error and time', () => {
    const rows = [row('6.1.0-55-amd64', 'built'), row('6.1.0-56-amd64', 'built'), row('6.1.0-57-amd64', 'failed'), row('6.1.0-58-amd64', 'failed')];
    const s = only([...rows].reverse());
    expect(s.build).toMatchObject({
      state: 'broken',
      lastGood: '6.1.0-56-amd64',
      firstBad: '6.1.0-57-amd64',
      firstError: 'error: 6.1.0-57-amd64 broke',
      reason: 'compile-error',
      buildId: rows[2]!.buildId,
      since: rows[2]!.at,
    });
    expect(windowSentence(s.build!)).toBe('builds on 6.1.0-56-amd64, fails since 6.1.0-57-amd64');
    const open = openRegressions([s]);
    expect(open).toHaveLength(1);
    expect(open[0]?.window.check).toBe('build');
  });

  it('orders by ABI, not by name or by time: 6.1.0-9 built, 6.1.0-10 failed (recorded first) is broken since 6.1.0-10', () => {
    const s = only([row('6.1.0-10-amd64', 'failed'), row('6.1.0-9-amd64', 'built')]);
    expect(s.build).toMatchObject({ state: 'broken', lastGood: '6.1.0-9-amd64', firstBad: '6.1.0-10-amd64' });
  });

  it('the last good kernel is the newest good one before the trailing failures, even after an older failure', () => {
    const s = only([row('6.1.0-1-amd64', 'built'), row('6.1.0-2-amd64', 'failed'), row('6.1.0-3-amd64', 'built'), row('6.1.0-4-amd64', 'failed'), row('6.1.0-5-amd64', 'failed')]);
    expect(s.build).toMatchObject({ state: 'broken', lastGood: '6.1.0-3-amd64', firstBad: '6.1.0-4-amd64' });
  });

  it('fixed: failed on a run of kernels, builds again on the newest', () => {
    const rows = [row('6.1.0-55-amd64', 'built'), row('6.1.0-56-amd64', 'failed'), row('6.1.0-57-amd64', 'failed'), row('6.1.0-58-amd64', 'built'), row('6.1.0-59-amd64', 'built')];
    const s = only(rows);
    expect(s.build).toMatchObject({
      state: 'fixed',
      firstBad: '6.1.0-56-amd64',
      lastBad: '6.1.0-57-amd64',
      fixedIn: '6.1.0-58-amd64',
      lastGood: '6.1.0-59-amd64',
      since: rows[3]!.at,
    });
    expect(windowSentence(s.build!)).toBe('builds again since 6.1.0-58-amd64 (failed from 6.1.0-56-amd64 to 6.1.0-57-amd64)');
    expect(openRegressions([s])).toEqual([]);
  });

  it('never built: every kernel failed, since the oldest', () => {
    const rows = [row('6.1.0-56-amd64', 'failed'), row('6.1.0-57-amd64', 'failed')];
    const s = only(rows);
    expect(s.build).toMatchObject({ state: 'never-built', firstBad: '6.1.0-56-amd64', since: rows[0]!.at });
    expect(s.build?.lastGood).toBeUndefined();
    expect(windowSentence(s.build!)).toBe('fails on every kernel since 6.1.0-56-amd64 (never built)');
    expect(openRegressions([s])).toEqual([]);
  });

  it('excluded kernels are neither good nor bad: skipped in the window and listed apart', () => {
    const s = only([row('6.1.0-55-amd64', 'built'), row('6.1.0-56-amd64', 'excluded'), row('6.1.0-57-amd64', 'failed'), row('6.1.0-58-amd64', 'excluded')]);
    expect(s.build).toMatchObject({ state: 'broken', lastGood: '6.1.0-55-amd64', firstBad: '6.1.0-57-amd64', newest: '6.1.0-57-amd64', kernels: 2 });
    expect(s.excluded).toEqual(['6.1.0-56-amd64', '6.1.0-58-amd64']);
  });

  it('a series whose kernels are all excluded has no build window', () => {
    const s = only([row('6.1.0-56-amd64', 'excluded'), row('6.1.0-57-amd64', 'excluded')]);
    expect(s.build).toBeUndefined();
    expect(s.excluded).toHaveLength(2);
  });

  it('a kernel built again is judged by its newest result; since is when its current run of failures began', () => {
    const first = row('6.1.0-57-amd64', 'built');
    const fail1 = row('6.1.0-57-amd64', 'failed');
    const fail2 = row('6.1.0-57-amd64', 'failed', { firstError: 'error: second time' });
    const s = only([fail2, row('6.1.0-56-amd64', 'built'), first, fail1]);
    expect(s.build).toMatchObject({ state: 'broken', firstBad: '6.1.0-57-amd64', since: fail1.at, firstError: 'error: second time', buildId: fail2.buildId });
    const rebuilt = only([row('6.1.0-56-amd64', 'built'), row('6.1.0-57-amd64', 'failed'), row('6.1.0-57-amd64', 'built')]);
    expect(rebuilt.build?.state).toBe('ok');
  });

  it('a module version bump restarts the judgement: the newest version of the series alone decides', () => {
    const old = [row('6.1.0-55-amd64', 'built'), row('6.1.0-56-amd64', 'built'), row('6.1.0-57-amd64', 'failed')];
    // 1.10 (newer than 1.9 as a Debian version, older as a string) fixed it; 1.9's results are not mixed in
    const fixed = [row('6.1.0-57-amd64', 'built', { version: '1.10' }), row('6.1.0-58-amd64', 'built', { version: '1.10' })];
    const s = only([...old.map((r) => ({ ...r, version: '1.9' })), ...fixed]);
    expect(s.version).toBe('1.10');
    expect(s.build).toMatchObject({ state: 'ok', oldest: '6.1.0-57-amd64', kernels: 2 });
    // and a new version that fails everywhere is never-built, not "broken since" the old version's kernels
    const worse = only([...old.map((r) => ({ ...r, version: '1.9' })), row('6.1.0-57-amd64', 'failed', { version: '2.0' }), row('6.1.0-58-amd64', 'failed', { version: '2.0' })]);
    expect(worse.version).toBe('2.0');
    expect(worse.build).toMatchObject({ state: 'never-built', firstBad: '6.1.0-57-amd64' });
  });

  it('splits series by release, arch, flavour and upstream line', () => {
    const all = seriesWindows([
      row('6.1.0-56-amd64', 'built'),
      row('6.1.0-57-amd64', 'failed'),
      // 6.12 in the same release and flavour is another line: it building does not "fix" 6.1
      row('6.12.118+deb12-amd64', 'built'),
      row('6.1.0-57-cloud-amd64', 'built'),
      row('6.1.0-57-arm64', 'built', { arch: 'aarch64' }),
      row('5.10.0-46-amd64', 'failed', { release: 'debian-11' }),
    ]);
    expect(all.map((s) => `${s.release}/${s.arch}/${s.flavour}/${s.line}:${s.build?.state}`)).toEqual([
      'debian-11/x86_64/amd64/5.10:never-built',
      'debian-12/aarch64/arm64/6.1:ok',
      'debian-12/x86_64/amd64/6.1:broken',
      'debian-12/x86_64/amd64/6.12:ok',
      'debian-12/x86_64/cloud-amd64/6.1:ok',
    ]);
    expect(openRegressions(all).map((o) => `${o.series.release}/${o.series.flavour}/${o.series.line}`)).toEqual(['debian-12/amd64/6.1']);
  });

  it('trixie kernels: a +deb13.1 point upload follows +deb13 of the same upstream version', () => {
    const s = only([
      row('6.12.57+deb13-amd64', 'failed', { release: 'debian-13' }),
      row('6.12.48+deb13.1-amd64', 'failed', { release: 'debian-13' }),
      row('6.12.48+deb13-amd64', 'built', { release: 'debian-13' }),
    ]);
    expect(s.line).toBe('6.12');
    expect(windowSentence(s.build!)).toBe('builds on 6.12.48+deb13-amd64, fails since 6.12.48+deb13.1-amd64');
  });

  it('cloud flavours keep their own series: 5.10.0-35-cloud-amd64', () => {
    const s = only([row('5.10.0-35-cloud-amd64', 'built', { release: 'debian-11' }), row('5.10.0-36-cloud-amd64', 'failed', { release: 'debian-11' })]);
    expect(s).toMatchObject({ flavour: 'cloud-amd64', line: '5.10' });
    expect(windowSentence(s.build!)).toBe('builds on 5.10.0-35-cloud-amd64, fails since 5.10.0-36-cloud-amd64');
  });
});

describe('series windows: the load check', () => {
  it('loads on the last good kernel, load-failed since the first bad one; not-verified is ignored', () => {
    const rows = [
      row('6.1.0-55-amd64', 'built', { load: 'loaded' }),
      row('6.1.0-56-amd64', 'built', { load: 'not-verified' }),
      row('6.1.0-57-amd64', 'built', { load: 'load-failed', reason: 'unknown-symbol', firstError: 'hello: Unknown symbol foo' }),
      row('6.1.0-58-amd64', 'built'),
    ];
    const s = only(rows);
    expect(s.build?.state).toBe('ok');
    expect(s.load).toMatchObject({ state: 'broken', lastGood: '6.1.0-55-amd64', firstBad: '6.1.0-57-amd64', firstError: 'hello: Unknown symbol foo', kernels: 2 });
    expect(windowSentence(s.load!)).toBe('loads on 6.1.0-55-amd64, load-failed since 6.1.0-57-amd64');
    expect(openRegressions([s]).map((o) => o.window.check)).toEqual(['load']);
  });

  it('no load window when no load check ran', () => {
    const s = only([row('6.1.0-56-amd64', 'built'), row('6.1.0-57-amd64', 'failed')]);
    expect(s.load).toBeUndefined();
  });

  it('never loaded and loaded again read as load sentences', () => {
    const never = only([row('6.1.0-56-amd64', 'built', { load: 'load-failed' }), row('6.1.0-57-amd64', 'built', { load: 'load-failed' })]);
    expect(windowSentence(never.load!)).toBe('load-failed on every kernel since 6.1.0-56-amd64 (never loaded)');
    const again = only([
      row('6.1.0-55-amd64', 'built', { load: 'loaded' }),
      row('6.1.0-56-amd64', 'built', { load: 'load-failed' }),
      row('6.1.0-57-amd64', 'built', { load: 'loaded' }),
    ]);
    expect(windowSentence(again.load!)).toBe('loads again since 6.1.0-57-amd64 (load-failed on 6.1.0-56-amd64)');
    const ok = only([row('6.1.0-57-amd64', 'built', { load: 'loaded' })]);
    expect(windowSentence(ok.load!)).toBe('loads on 6.1.0-57-amd64');
  });

  it('lists open regressions of both checks, the most recent first', () => {
    const a = seriesWindows([row('6.1.0-56-amd64', 'built'), row('6.1.0-57-amd64', 'failed')]);
    const b = seriesWindows([row('6.1.0-56-cloud-amd64', 'built', { load: 'loaded' }), row('6.1.0-57-cloud-amd64', 'built', { load: 'load-failed' })]);
    expect(openRegressions([...a, ...b]).map((o) => `${o.series.flavour}:${o.window.check}`)).toEqual(['cloud-amd64:load', 'amd64:build']);
  });
});

describe('changelogRequest: which span of the headers changelog a window blames', () => {
  it('broken: (lastGood, firstBad]; never built: the first kernel alone; ok and fixed: nothing to blame', () => {
    const broken = only([row('6.1.0-56-amd64', 'built'), row('6.1.0-57-amd64', 'failed')]);
    expect(changelogRequest(broken, broken.build!, { lastGood: '6.1.192-2' })).toEqual({
      release: 'debian-12',
      flavour: 'amd64',
      lastGood: '6.1.0-56-amd64',
      firstBad: '6.1.0-57-amd64',
      versions: { lastGood: '6.1.192-2' },
    });
    const never = only([row('6.1.0-56-amd64', 'failed'), row('6.1.0-57-amd64', 'failed')]);
    expect(changelogRequest(never, never.build!)).toEqual({ release: 'debian-12', flavour: 'amd64', firstBad: '6.1.0-56-amd64' });
    const fixed = only([row('6.1.0-55-amd64', 'built'), row('6.1.0-56-amd64', 'failed'), row('6.1.0-57-amd64', 'built')]);
    expect(changelogRequest(fixed, fixed.build!)).toBeUndefined();
    const ok = only([row('6.1.0-57-amd64', 'built')]);
    expect(changelogRequest(ok, ok.build!)).toBeUndefined();
  });
});
