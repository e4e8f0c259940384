import { describe, expect, it } from 'vitest';
import { errorText, progressPrinter, reportTable } from '../../src/cli/render.js';
import type { KernelRecord } from '../../src/queue/job-payload.js';
import type { BuildReport } from '../../src/report/report.js';

const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

describe('what the CLI prints from a build holds no control characters', () => {
  it('the report table cleans first errors, messages and warnings', () => {
    const report: BuildReport = {
      schemaVersion: 1,
      tool: { name: 'kfarm', version: '0' },
      module: 'hello',
      version: '1.0',
      source: { dir: '/src', sha256: 'a'.repeat(64) },
      startedAt: '',
      finishedAt: '',
      durationMs: 10,
      summary: { built: 0, excluded: 1, failed: 1 },
      kernels: [
        { kernel: '6.1.0-56-amd64', arch: 'x86_64', image: 'debian-12', verdict: 'failed', reason: 'make-failed', firstError: 'x.c: \u001b[31merror\u001b[0m\u001b]0;pwned\u0007 boom', durationMs: 1, cached: false, worker: 'w', attempt: 1, log: 'logs/x.log', logTruncated: false, modules: [] },
        { kernel: '6.12.1', arch: 'x86_64', image: 'debian-12', verdict: 'excluded', message: 'excluded\r\u001b[2Kfake built line', durationMs: 1, cached: false, worker: 'w', attempt: 1, log: 'logs/y.log', logTruncated: false, modules: [] },
      ],
      warnings: ['dkms.conf \u001b[1msyntax\u0007'],
    };
    const text = reportTable(report);
    expect(text).not.toMatch(CONTROL);
    expect(text).toContain('make-failed: x.c: error boom');
    expect(text).toContain('excluded fake built line');
    expect(text).toContain('warning: dkms.conf syntax');
  });

  it('progress lines clean first errors and notes', () => {
    const lines: string[] = [];
    const print = progressPrinter((l) => lines.push(l));
    print({ type: 'warning', text: 'w\u001b[2J' });
    const record = { verdict: 'failed', durationMs: 5, firstError: 'e\u001bc\u0000rror' } as unknown as KernelRecord;
    print({ type: 'kernel-done', kernel: '6.1.0-56-amd64', record, cached: false } as Parameters<typeof print>[0]);
    expect(lines.join('\n')).not.toMatch(CONTROL);
    expect(lines[1]).toContain(': error');
  });

  it('an error keeps its lines but loses the escape sequences a quoted build log held', () => {
    const text = errorText('dkms.conf in /src is not usable: PACKAGE_NAME "hello\\u001b[31m" is not a valid module name', 'Fix dkms.conf.\nWhat evaluating it printed:\n  CC [M]  /var/lib/dkms/hello\u001b[31m/1.0/build/hello.o');
    expect(text).not.toMatch(CONTROL);
    expect(text.split('\n')).toEqual([
      'kfarm: error: dkms.conf in /src is not usable: PACKAGE_NAME "hello\\u001b[31m" is not a valid module name',
      'Fix dkms.conf.',
      'What evaluating it printed:',
      '  CC [M]  /var/lib/dkms/hello/1.0/build/hello.o',
      '',
    ]);
  });
});
