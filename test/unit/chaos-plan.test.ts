import { describe, expect, it } from 'vitest';
import { judgeChaos } from '../../bench/chaos/judge.js';
import { chaosSchedule, countFaults, FAULT_KINDS, seededRandom } from '../../bench/chaos/schedule.js';
import type { BuildReport, KernelReport } from '../../src/report/report.js';

const row = (kernel: string, verdict: KernelReport['verdict'], sha = 'a'.repeat(64), extra: Partial<KernelReport> = {}): KernelReport => ({
  module: 'hello',
  version: '1.0.0',
  kernel,
  arch: 'x86_64',
  release: 'debian-12',
  debianArch: 'amd64',
  image: 'debian-12',
  verdict,
  durationMs: 1,
  cached: false,
  worker: 'w',
  attempt: 1,
  log: `logs/${kernel}.log`,
  logTruncated: false,
  modules: verdict === 'built' ? [{ name: 'hello', builtName: 'hello', file: 'hello.ko', sha256: sha, size: 1, destination: '/updates/dkms', destModuleLocation: '/extra' }] : [],
  ...extra,
});
const report = (kernels: KernelReport[]): BuildReport =>
  ({ schemaVersion: 1, module: 'hello', version: '1.0.0', kernels, summary: { built: 0, excluded: 0, failed: 0 }, warnings: [] }) as unknown as BuildReport;

describe('chaos schedule', () => {
  it('is the same for the same seed and differs for another (a failing run replays from its seed)', () => {
    const request = { seed: 42, durationMs: 600_000, minGapMs: 20_000, maxGapMs: 40_000 };
    expect(chaosSchedule(request)).toEqual(chaosSchedule(request));
    expect(chaosSchedule({ ...request, seed: 43 })).not.toEqual(chaosSchedule(request));
    const a = seededRandom(7);
    const b = seededRandom(7);
    expect([a(), a(), a()]).toEqual([b(), b(), b()]);
  });

  it('spaces faults by the gaps asked, inside the run, every kind drawn, each fill freed a few seconds later', () => {
    const faults = chaosSchedule({ seed: 1, durationMs: 3_600_000, minGapMs: 20_000, maxGapMs: 40_000 });
    const injected = faults.filter((f) => f.kind !== 'free-disk');
    expect(injected.length).toBeGreaterThanOrEqual(3_600_000 / 40_000 - 1);
    expect(injected.length).toBeLessThanOrEqual(3_600_000 / 20_000);
    for (const [i, f] of injected.entries()) {
      const gap = f.atMs - (injected[i - 1]?.atMs ?? 0);
      expect(gap).toBeGreaterThanOrEqual(20_000);
      expect(gap).toBeLessThanOrEqual(40_000);
      expect(f.atMs).toBeLessThan(3_600_000);
    }
    const counts = countFaults(faults);
    for (const kind of FAULT_KINDS) expect(counts[kind], kind).toBeGreaterThan(0);
    expect(counts['free-disk']).toBe(counts['fill-disk']);
    const fills = faults.filter((f) => f.kind === 'fill-disk').map((f) => f.atMs);
    const frees = faults.filter((f) => f.kind === 'free-disk').map((f) => f.atMs);
    fills.forEach((at, i) => expect((frees[i] ?? 0) - at).toBeGreaterThanOrEqual(5_000));
  });

  it('keeps to the kinds asked and refuses gaps that make no schedule', () => {
    const faults = chaosSchedule({ seed: 3, durationMs: 300_000, minGapMs: 8_000, maxGapMs: 15_000, kinds: ['kill-worker'] });
    expect(new Set(faults.map((f) => f.kind))).toEqual(new Set(['kill-worker']));
    expect(() => chaosSchedule({ seed: 3, durationMs: 1, minGapMs: 0, maxGapMs: 1 })).toThrow(/gaps/);
    expect(() => chaosSchedule({ seed: 3, durationMs: 1, minGapMs: 5, maxGapMs: 4 })).toThrow(/gaps/);
  });
});

describe('chaos judgement against a quiet run', () => {
  const quiet = [report([row('6.1.0-56-amd64', 'built'), row('6.1.0-57-amd64', 'failed', undefined, { reason: 'make-failed' })])];

  it('passes a chaos run that ends with one row per cell, the same verdicts and the same bytes', () => {
    const j = judgeChaos(quiet, [report([row('6.1.0-57-amd64', 'failed', undefined, { reason: 'make-failed' }), row('6.1.0-56-amd64', 'built')])]);
    expect(j).toMatchObject({ ok: true, cells: 2, missing: [], duplicated: [], extra: [], verdicts: [], artifacts: [] });
  });

  it('names a missing cell, a duplicated one, one the quiet run did not have, a verdict blamed on a fault and other bytes', () => {
    expect(judgeChaos(quiet, [report([row('6.1.0-56-amd64', 'built')])]).missing).toEqual(['hello 1.0.0 6.1.0-57-amd64 x86_64']);
    const twice = judgeChaos(quiet, [
      report([row('6.1.0-56-amd64', 'built'), row('6.1.0-56-amd64', 'built'), row('6.1.0-57-amd64', 'failed', undefined, { reason: 'make-failed' })]),
    ]);
    expect(twice.duplicated).toEqual(['hello 1.0.0 6.1.0-56-amd64 x86_64']);
    expect(twice.ok).toBe(false);
    const blamed = judgeChaos(quiet, [
      report([row('6.1.0-56-amd64', 'failed', undefined, { reason: 'timeout' }), row('6.1.0-57-amd64', 'failed', undefined, { reason: 'make-failed' })]),
    ]);
    expect(blamed.verdicts).toEqual([{ cell: 'hello 1.0.0 6.1.0-56-amd64 x86_64', quiet: 'built', chaos: 'failed/timeout' }]);
    const other = judgeChaos(quiet, [
      report([row('6.1.0-56-amd64', 'built', 'b'.repeat(64)), row('6.1.0-57-amd64', 'failed', undefined, { reason: 'make-failed' }), row('6.12.1-amd64', 'built')]),
    ]);
    expect(other.artifacts.map((d) => d.cell)).toEqual(['hello 1.0.0 6.1.0-56-amd64 x86_64']);
    expect(other.extra).toEqual(['hello 1.0.0 6.12.1-amd64 x86_64']);
  });
});
