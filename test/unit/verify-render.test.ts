import { describe, expect, it } from 'vitest';
import { reportTable } from '../../src/cli/render.js';
import type { BuildReport, KernelReport } from '../../src/report/report.js';
import type { LoadReport } from '../../src/job/verify-job.js';

const row = (kernel: string, load?: LoadReport): KernelReport => ({
  kernel,
  arch: 'x86_64',
  release: 'debian-12',
  debianArch: 'amd64',
  image: 'debian-12',
  verdict: 'built',
  durationMs: 1000,
  cached: false,
  worker: 'w',
  attempt: 1,
  log: 'l',
  logTruncated: false,
  modules: [],
  tarball: { path: `${kernel}.tar.gz`, sha256: '', size: 1 },
  ...(load ? { load } : {}),
});
const report = (kernels: KernelReport[]): BuildReport => ({
  schemaVersion: 1,
  tool: { name: 'kfarm', version: '0' },
  module: 'hello',
  version: '1.0',
  source: { dir: '/s', sha256: '' },
  startedAt: '',
  finishedAt: '',
  durationMs: 1000,
  summary: { built: kernels.length, excluded: 0, failed: 0 },
  kernels,
  warnings: [],
});

describe('the final table with load verification', () => {
  it('has no LOAD column when no row was verified', () => {
    expect(reportTable(report([row('6.1.0-57-amd64')]), 'full')).not.toContain('LOAD');
  });

  it("shows each row's load verdict, and a load failure's first kernel line as its detail (escapes dropped)", () => {
    const text = reportTable(
      report([
        row('6.1.0-56-amd64', { verdict: 'loaded', accel: 'tcg' }),
        row('6.1.0-57-amd64', { verdict: 'load-failed', reason: 'unknown-symbol', firstError: 'x: Unknown symbol \u001b[31mfoo (err -2)' }),
        row('6.12.117+deb12-amd64'),
      ]),
      'full',
    );
    const lines = text.split('\n');
    expect(lines[1]).toMatch(/^KERNEL\s+VERDICT\s+TIME\s+LOAD\s+DETAIL$/);
    expect(text).toMatch(/6\.1\.0-56-amd64\s+built\s+1\.0 s\s+loaded \(tcg\)\s+6\.1\.0-56-amd64\.tar\.gz/);
    expect(text).toMatch(/6\.1\.0-57-amd64\s+built\s+1\.0 s\s+load-failed: unknown-symbol\s+unknown-symbol: x: Unknown symbol foo \(err -2\)/);
    expect(text).toMatch(/6\.12\.117\+deb12-amd64\s+built\s+1\.0 s\s+-\s+/);
    expect(text).not.toContain('\u001b');
  });

  it('the summary view lists load-failed kernels as it lists failed ones', () => {
    const many = Array.from({ length: 25 }, (_, i) => row(`6.1.0-${i}-amd64`, { verdict: 'loaded', accel: 'kvm' }));
    many[3] = row('6.1.0-3-amd64', { verdict: 'load-failed', reason: 'version-magic', firstError: 'hello: disagrees about version of symbol module_layout' });
    const text = reportTable(report(many), 'auto');
    expect(text).toContain('6.1.0-3-amd64');
    expect(text).not.toContain('6.1.0-4-amd64');
  });
});
