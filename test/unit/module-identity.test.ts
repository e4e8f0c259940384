import { describe, expect, it } from 'vitest';
import { settleIdentity } from '../../src/coordinator/module-identity.js';
import type { KernelRecord } from '../../src/job/job-payload.js';

const record = (kernel: string, name: string | undefined, version: string | undefined, verdict: KernelRecord['verdict'] = 'built'): { record: KernelRecord } => ({
  record: {
    schemaVersion: 1,
    kernel,
    arch: 'x86_64',
    image: 'debian-12',
    verdict,
    ...(name !== undefined ? { packageName: name } : {}),
    ...(version !== undefined ? { packageVersion: version } : {}),
    modules: verdict === 'built' ? [{ builtName: 'm', destName: 'm', destLocation: '/updates', installLocation: '/updates/dkms', file: { sha256: 'a', size: 1 } }] : [],
    log: { sha256: 'l', size: 1 },
    logTruncated: false,
    durationMs: 1,
    worker: 'w',
    finishedAt: '2026-11-26T00:00:00Z',
    cacheable: true,
  },
});

describe('the module name and version, settled from every kernel', () => {
  it('is what every kernel agrees on', () => {
    const { identity, results } = settleIdentity([record('6.1', 'hello', '1.0'), record('6.12', 'hello', '1.0')]);
    expect(identity).toEqual({ name: 'hello', version: '1.0' });
    expect(results.map((r) => r.record.verdict)).toEqual(['built', 'built']);
  });

  it('fails the kernels whose dkms.conf said something else than the majority', () => {
    const { identity, results } = settleIdentity([record('6.1.a', 'hello', '1.0'), record('6.12', 'hello', '2.0'), record('6.1.b', 'hello', '1.0')]);
    expect(identity).toEqual({ name: 'hello', version: '1.0' });
    const odd = results[1]?.record;
    expect(odd?.verdict).toBe('failed');
    expect(odd?.reason).toBe('bad-conf');
    expect(odd?.firstError).toContain('hello/2.0 on this kernel but hello/1.0 on 2 other(s)');
    expect(odd?.modules).toEqual([]);
    expect(results[0]?.record.verdict).toBe('built');
  });

  it('leaves kernels that never got a name alone, and has no identity when none did', () => {
    const failed = record('6.1', undefined, undefined, 'failed');
    expect(settleIdentity([failed, record('6.12', 'hello', '1.0')]).results[0]).toBe(failed);
    expect(settleIdentity([failed, record('6.12', '', '', 'failed')]).identity).toBeUndefined();
  });

  it('breaks a tie with the first kernel', () => {
    expect(settleIdentity([record('a', 'x', '1'), record('b', 'y', '1')]).identity).toEqual({ name: 'x', version: '1' });
  });
});
