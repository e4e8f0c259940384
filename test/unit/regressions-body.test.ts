import { describe, expect, it } from 'vitest';
import type { ResultRow } from '../../src/service/farm-db.js';
import { regressionsBody } from '../../src/service/http/regressions-routes.js';
import { seriesWindows } from '../../src/service/regressions/series-windows.js';

/** The regression view's answer: every series with its windows and sentences, open regressions first, the most recent first. */

let minute = 0;
function row(kernel: string, verdict: ResultRow['verdict'], extra: Partial<ResultRow> = {}): ResultRow {
  minute++;
  return {
    buildId: `b-${minute}`,
    module: 'hello',
    version: '1.0',
    kernel,
    release: 'debian-12',
    arch: 'x86_64',
    flavour: 'amd64',
    verdict,
    at: new Date(Date.UTC(2026, 10, 1, 0, minute)).toISOString(),
    ...(verdict === 'failed' ? { reason: 'make-failed', firstError: `error: ${kernel}` } : {}),
    ...extra,
  };
}

describe('regressionsBody', () => {
  it('puts broken series first, the most recently broken first, then the rest in series order, each window with its sentence', () => {
    const rows = [
      row('6.1.0-56-amd64', 'built'),
      row('6.1.0-57-amd64', 'built'),
      row('6.1.0-56-cloud-amd64', 'built', { flavour: 'cloud-amd64' }),
      row('6.1.0-57-cloud-amd64', 'failed', { flavour: 'cloud-amd64' }),
      row('6.12.48+deb12-amd64', 'built'),
      row('6.12.57+deb12-amd64', 'failed'),
      row('6.1.0-57-rt-amd64', 'failed', { flavour: 'rt-amd64' }),
    ];
    const body = regressionsBody('hello', seriesWindows(rows));
    expect(body.open).toBe(2);
    expect(body.series.map((s) => `${s.flavour} ${s.line} ${s.build?.state}`)).toEqual(['amd64 6.12 broken', 'cloud-amd64 6.1 broken', 'amd64 6.1 ok', 'rt-amd64 6.1 never-built']);
    expect(body.series[0]?.build?.sentence).toBe('builds on 6.12.48+deb12-amd64, fails since 6.12.57+deb12-amd64');
    expect(body.series[3]?.build?.sentence).toBe('fails on every kernel since 6.1.0-57-rt-amd64 (never built)');
  });

  it('counts a load regression as open, and orders it by when it broke', () => {
    const rows = [
      row('6.1.0-56-amd64', 'built', { load: 'loaded' }),
      row('6.1.0-57-amd64', 'built', { load: 'load-failed' }),
      row('6.1.0-56-cloud-amd64', 'built', { flavour: 'cloud-amd64' }),
    ];
    const body = regressionsBody('hello', seriesWindows(rows));
    expect(body.open).toBe(1);
    expect(body.series.map((s) => `${s.flavour} ${s.build?.state} ${s.load?.state ?? '-'}`)).toEqual(['amd64 ok broken', 'cloud-amd64 ok -']);
    expect(body.series[0]?.load?.sentence).toBe('loads on 6.1.0-56-amd64, load-failed since 6.1.0-57-amd64');
  });
});
