import { describe, expect, it } from 'vitest';
import type { KernelRecord } from '../../src/queue/job-payload.js';
import { buildReport } from '../../src/report/report.js';

describe('report.json holds no control characters, whoever composed the message', () => {
  it('cleans and caps a farm error message the coordinator wrote into a record', () => {
    const record: KernelRecord = {
      schemaVersion: 1, kernel: '6.1.0-56-amd64', arch: 'x86_64', image: 'debian-12', verdict: 'failed', reason: 'worker-error',
      message: `the worker said \u001b[2J${'x'.repeat(10_000)}`, firstError: 'line one\nline two\u0007', modules: [],
      log: { sha256: 'a'.repeat(64), size: 1 }, logTruncated: false, durationMs: 0, worker: '', finishedAt: '', cacheable: false,
    };
    const report = buildReport({
      toolVersion: '0', module: 'm', version: '1', source: { dir: '/s', sha256: 'b'.repeat(64) }, startedAt: new Date(0), finishedAt: new Date(1),
      outDir: '/out', results: [{ record, cached: false, logPath: '/out/logs/6.1.0-56-amd64.log', tarball: undefined }], fullTarball: undefined,
      warnings: ['w\u001b]0;t\u0007arn'],
    });
    const json = JSON.stringify(report);
    expect(json).not.toMatch(/\\u00(?:0[0-8]|1[0-9a-f]|7f)/i);
    expect(report.kernels[0]?.message?.length).toBe(2000);
    expect(report.kernels[0]?.firstError).toBe('line one line two');
    expect(report.warnings).toEqual(['warn']);
  });
});
