import { describe, expect, it } from 'vitest';
import type { BuildRow, KernelSeenRow, ModuleRow, ResultRow } from '../../src/service/farm-db.js';
import { planWatch } from '../../src/service/watch/watch-plan.js';

const seen = (kernel: string, firstSeen: string, flavour = 'amd64'): KernelSeenRow => ({
  kernel,
  release: 'debian-12',
  arch: 'amd64',
  flavour,
  version: '1',
  firstSeen,
  lastSeen: firstSeen,
});
const mod = (name: string, version = '1.0'): ModuleRow => ({ name, version, sourceSha256: 'a'.repeat(64), settings: { formats: ['bmdeb'] }, createdAt: 't', updatedAt: 't' });
const result = (module: string, kernel: string, version = '1.0'): ResultRow => ({
  buildId: 'b',
  module,
  version,
  kernel,
  release: 'debian-12',
  arch: 'x86_64',
  flavour: 'amd64',
  verdict: 'built',
  at: 't',
});
const T0 = '2026-12-08T00:00:00.000Z';
const T1 = '2026-12-08T01:00:00.000Z';

describe('planWatch', () => {
  const base = { flavours: [] as string[], held: new Set<string>(), modules: [mod('hello')], results: new Map<string, ResultRow[]>(), unfinished: [] as BuildRow[] };

  it('builds nothing for the baseline: the kernels of the first look', () => {
    expect(planWatch({ ...base, seen: [seen('6.1.0-56-amd64', T0), seen('6.1.0-57-amd64', T0)] })).toEqual({ sync: [], builds: [] });
  });

  it('syncs a kernel that appeared after the baseline, then builds every module for it once its image is held', () => {
    const rows = [seen('6.1.0-56-amd64', T0), seen('6.1.0-58-amd64', T1)];
    expect(planWatch({ ...base, seen: rows })).toEqual({ sync: ['6.1.0-58-amd64'], builds: [] });
    const plan = planWatch({ ...base, seen: rows, modules: [mod('hello'), mod('other')], held: new Set(['6.1.0-58-amd64']) });
    expect(plan.sync).toEqual([]);
    expect(plan.builds.map((b) => [b.module.name, b.kernels])).toEqual([
      ['hello', ['6.1.0-58-amd64']],
      ['other', ['6.1.0-58-amd64']],
    ]);
  });

  it('leaves a module that has a result for the kernel (of its version) or a build queued or running', () => {
    const rows = [seen('6.1.0-56-amd64', T0), seen('6.1.0-58-amd64', T1)];
    const held = new Set(['6.1.0-58-amd64']);
    expect(planWatch({ ...base, seen: rows, held, results: new Map([['hello', [result('hello', '6.1.0-58-amd64')]]]) }).builds).toEqual([]);
    // a result of an older version of the module does not count: the new version is built
    expect(planWatch({ ...base, seen: rows, held, results: new Map([['hello', [result('hello', '6.1.0-58-amd64', '0.9')]]]) }).builds).toHaveLength(1);
    const running = { id: 'b-1', module: 'hello', state: 'running' } as BuildRow;
    expect(planWatch({ ...base, seen: rows, held, unfinished: [running] }).builds).toEqual([]);
  });

  it('follows only the configured flavours', () => {
    const rows = [seen('6.1.0-56-amd64', T0), seen('6.1.0-58-amd64', T1), seen('6.1.0-58-rt-amd64', T1, 'rt-amd64')];
    expect(planWatch({ ...base, seen: rows, flavours: ['amd64'] }).sync).toEqual(['6.1.0-58-amd64']);
    expect(planWatch({ ...base, seen: rows }).sync).toEqual(['6.1.0-58-amd64', '6.1.0-58-rt-amd64']);
  });
});
