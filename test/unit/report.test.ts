import { describe, expect, it } from 'vitest';
import type { KernelRecord } from '../../src/job/job-payload.js';
import { groupLine, reportGroups } from '../../src/report/groups.js';
import { debianArchOf, releaseOfImage } from '../../src/report/release-arch.js';
import { buildReport, type KernelReport } from '../../src/report/report.js';

describe('report.json holds no control characters, whoever composed the message', () => {
  it('cleans and caps a farm error message the coordinator wrote into a record', () => {
    const record: KernelRecord = {
      schemaVersion: 1,
      kernel: '6.1.0-56-amd64',
      arch: 'x86_64',
      image: 'debian-12',
      verdict: 'failed',
      reason: 'worker-error',
      message: `the worker said \u001b[2J${'x'.repeat(10_000)}`,
      firstError: 'line one\nline two\u0007',
      modules: [],
      log: { sha256: 'a'.repeat(64), size: 1 },
      logTruncated: false,
      durationMs: 0,
      worker: '',
      finishedAt: '',
      cacheable: false,
    };
    const report = buildReport({
      toolVersion: '0',
      module: 'm',
      version: '1',
      source: { dir: '/s', sha256: 'b'.repeat(64) },
      startedAt: new Date(0),
      finishedAt: new Date(1),
      outDir: '/out',
      results: [{ record, cached: false, logPath: '/out/logs/6.1.0-56-amd64.log', tarball: undefined }],
      fullTarball: undefined,
      warnings: ['w\u001b]0;t\u0007arn'],
    });
    const json = JSON.stringify(report);
    expect(json).not.toMatch(/\\u00(?:0[0-8]|1[0-9a-f]|7f)/i);
    expect(report.kernels[0]?.message?.length).toBe(2000);
    expect(report.kernels[0]?.firstError).toBe('line one line two');
    expect(report.warnings).toEqual(['warn']);
  });
});

describe('every report row says its release and arch, from the job', () => {
  it('derives the release from the image name and the Debian arch from the uname arch', () => {
    const record = (kernel: string, arch: string, image: string): KernelRecord => ({
      schemaVersion: 1,
      kernel,
      arch,
      image,
      verdict: 'built',
      modules: [],
      log: { sha256: 'a'.repeat(64), size: 1 },
      logTruncated: false,
      durationMs: 0,
      worker: '',
      finishedAt: '',
      cacheable: true,
    });
    const report = buildReport({
      toolVersion: '0',
      module: 'm',
      version: '1',
      source: { dir: '/s', sha256: 'b'.repeat(64) },
      startedAt: new Date(0),
      finishedAt: new Date(1),
      outDir: '/out',
      fullTarball: undefined,
      warnings: [],
      results: [record('6.1.0-56-amd64', 'x86_64', 'debian-12'), record('6.12.43+deb13-arm64', 'aarch64', 'debian-13')].map((r) => ({
        record: r,
        cached: false,
        logPath: '/out/l',
        tarball: undefined,
      })),
    });
    expect(report.kernels.map((k) => [k.release, k.arch, k.debianArch])).toEqual([
      ['debian-12', 'x86_64', 'amd64'],
      ['debian-13', 'aarch64', 'arm64'],
    ]);
  });

  it('names a release by the image name or its debian-N prefix; unknown arches keep their name', () => {
    expect(releaseOfImage('debian-12')).toBe('debian-12');
    expect(releaseOfImage('debian-11-custom')).toBe('debian-11');
    expect(releaseOfImage('mydistro')).toBe('mydistro');
    expect(debianArchOf('x86_64')).toBe('amd64');
    expect(debianArchOf('arm64')).toBe('arm64');
    expect(debianArchOf('riscv64')).toBe('riscv64');
  });
});

describe('report groups', () => {
  const row = (kernel: string, release: string, debianArch: string, verdict: KernelReport['verdict']): KernelReport => ({
    kernel,
    arch: debianArch === 'amd64' ? 'x86_64' : 'aarch64',
    release,
    debianArch,
    image: release,
    verdict,
    durationMs: 1,
    cached: false,
    worker: 'w',
    attempt: 1,
    log: 'l',
    logTruncated: false,
    modules: [],
  });
  it('counts verdicts per release and arch, releases in numeric order, kernels in report order', () => {
    const groups = reportGroups([
      row('a', 'debian-13', 'arm64', 'built'),
      row('b', 'debian-12', 'amd64', 'failed'),
      row('c', 'debian-12', 'amd64', 'built'),
      row('d', 'debian-9', 'amd64', 'excluded'),
      row('e', 'debian-12', 'arm64', 'built'),
    ]);
    expect(groups.map(groupLine)).toEqual([
      'debian-9/amd64: 0 built, 1 excluded, 0 failed',
      'debian-12/amd64: 1 built, 0 excluded, 1 failed',
      'debian-12/arm64: 1 built, 0 excluded, 0 failed',
      'debian-13/arm64: 1 built, 0 excluded, 0 failed',
    ]);
    expect(groups[1]?.kernels.map((k) => k.kernel)).toEqual(['b', 'c']);
  });
});
