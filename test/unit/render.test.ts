import { describe, expect, it } from 'vitest';
import { buildProgress } from '../../src/cli/build-progress.js';
import type { LiveStatus } from '../../src/cli/live-status.js';
import { errorText, reportTable } from '../../src/cli/render.js';
import type { BuildEvent } from '../../src/coordinator/build-types.js';
import type { KernelRecord } from '../../src/job/job-payload.js';
import type { BuildReport, KernelReport } from '../../src/report/report.js';

// eslint-disable-next-line no-control-regex -- the rendered text must be free of control characters: that is what is checked
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
        {
          kernel: '6.1.0-56-amd64',
          arch: 'x86_64',
          release: 'debian-12',
          debianArch: 'amd64',
          image: 'debian-12',
          verdict: 'failed',
          reason: 'make-failed',
          firstError: 'x.c: \u001b[31merror\u001b[0m\u001b]0;pwned\u0007 boom',
          durationMs: 1,
          cached: false,
          worker: 'w',
          attempt: 1,
          log: 'logs/x.log',
          logTruncated: false,
          modules: [],
        },
        {
          kernel: '6.12.1',
          arch: 'x86_64',
          release: 'debian-12',
          debianArch: 'amd64',
          image: 'debian-12',
          verdict: 'excluded',
          message: 'excluded\r\u001b[2Kfake built line',
          durationMs: 1,
          cached: false,
          worker: 'w',
          attempt: 1,
          log: 'logs/y.log',
          logTruncated: false,
          modules: [],
        },
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
    const { live, lines } = recordingLive();
    const progress = buildProgress(live, false);
    progress.onEvent({ type: 'warning', text: 'w\u001b[2J' });
    const record = { verdict: 'failed', reason: 'make-failed', durationMs: 5, firstError: 'e\u001bc\u0000rror' } as unknown as KernelRecord;
    progress.onEvent({ type: 'kernel-done', kernel: '6.1.0-56-amd64', record, cached: false });
    progress.done();
    expect(lines.join('\n')).not.toMatch(CONTROL);
    expect(lines[1]).toContain(': error');
  });

  it('an error keeps its lines but loses the escape sequences a quoted build log held', () => {
    const text = errorText(
      'dkms.conf in /src is not usable: PACKAGE_NAME "hello\\u001b[31m" is not a valid module name',
      'Fix dkms.conf.\nWhat evaluating it printed:\n  CC [M]  /var/lib/dkms/hello\u001b[31m/1.0/build/hello.o',
    );
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

function recordingLive(): { live: LiveStatus; lines: string[]; statuses: string[]; ended: () => boolean } {
  const lines: string[] = [];
  const statuses: string[] = [];
  let ended = false;
  return {
    live: { tty: false, line: (t) => void lines.push(t), status: (t) => void statuses.push(t), done: () => void (ended = true) },
    lines,
    statuses,
    ended: () => ended,
  };
}

const target = (kernel: string) => ({ kernel, arch: 'x86_64', image: 'debian-12', imageRef: 'kfarm/debian-12:x', imageId: 'sha256:x' });
const finished = (kernel: string, verdict: 'built' | 'failed'): BuildEvent => ({
  type: 'kernel-done',
  kernel,
  cached: false,
  record: { verdict, durationMs: 1500, ...(verdict === 'failed' ? { reason: 'make-failed', firstError: 'hello.c:3: error: boom' } : {}) } as unknown as KernelRecord,
});

describe('build progress', () => {
  const run = (interactive: boolean) => {
    const rec = recordingLive();
    let clock = 0;
    const progress = buildProgress(rec.live, interactive, () => clock);
    progress.onEvent({ type: 'plan', source: 'examples/hello', targets: ['a', 'b', 'c'].map(target), where: 'this machine' });
    progress.onEvent({ type: 'kernel', kernel: 'a', state: 'running' });
    progress.onEvent({ type: 'kernel', kernel: 'b', state: 'running' });
    clock = 10_000;
    progress.onEvent(finished('a', 'built'));
    progress.onEvent({ type: 'kernel', kernel: 'c', state: 'running' });
    clock = 20_000;
    progress.onEvent(finished('b', 'failed'));
    progress.onEvent(finished('c', 'built'));
    progress.done();
    return rec;
  };

  it('off a terminal: one plain line per finished kernel, none per start', () => {
    const { lines, ended } = run(false);
    expect(lines).toEqual([
      'building examples/hello for 3 kernel(s) via this machine',
      '[1/3] a: built in 1.5 s',
      '[2/3] b: failed (make-failed) in 1.5 s: hello.c:3: error: boom',
      '[3/3] c: built in 1.5 s',
    ]);
    expect(ended()).toBe(true);
  });

  it('on a terminal: the status counts done, running, queued and failed; only failures are permanent lines', () => {
    const { lines, statuses } = run(true);
    expect(lines).toEqual(['building examples/hello for 3 kernel(s) via this machine', '[2/3] b: failed (make-failed) in 1.5 s: hello.c:3: error: boom']);
    expect(statuses).toContain('0/3 done · 2 running · 1 queued · 0 failed · 0 s elapsed');
    expect(statuses).toContain('1/3 done · 1 running · 1 queued · 0 failed · 10 s elapsed · ~20 s left');
    expect(statuses).toContain('2/3 done · 1 running · 0 queued · 1 failed · 20 s elapsed · ~10 s left');
    expect(statuses.at(-1)).toBe('3/3 done · 0 running · 0 queued · 1 failed · 20 s elapsed');
  });
});

describe('the final table', () => {
  const row = (kernel: string, release: string, debianArch: string, verdict: KernelReport['verdict']): KernelReport => ({
    kernel,
    arch: debianArch === 'amd64' ? 'x86_64' : 'aarch64',
    release,
    debianArch,
    image: release,
    verdict,
    durationMs: 1000,
    cached: false,
    worker: 'w',
    attempt: 1,
    log: 'l',
    logTruncated: false,
    modules: [],
    ...(verdict === 'failed' ? { reason: 'make-failed', firstError: 'boom' } : {}),
    ...(verdict === 'built' ? { tarball: { path: `${kernel}.tar.gz`, sha256: '', size: 1 } } : {}),
  });
  const report = (kernels: KernelReport[]): BuildReport => ({
    schemaVersion: 1,
    tool: { name: 'kfarm', version: '0' },
    module: 'hello',
    version: '1.0',
    source: { dir: '/s', sha256: '' },
    startedAt: '',
    finishedAt: '',
    durationMs: 60_000,
    summary: {
      built: kernels.filter((k) => k.verdict === 'built').length,
      excluded: kernels.filter((k) => k.verdict === 'excluded').length,
      failed: kernels.filter((k) => k.verdict === 'failed').length,
    },
    kernels,
    warnings: [],
  });
  const matrix = report([
    ...Array.from({ length: 30 }, (_, i) => row(`6.1.0-${i}-amd64`, 'debian-12', 'amd64', 'built')),
    row('6.1.0-99-arm64', 'debian-12', 'arm64', 'failed'),
    row('6.12.1+deb13-amd64', 'debian-13', 'amd64', 'excluded'),
  ]);

  it('summary: a line per release and arch, a row per failed kernel only', () => {
    const text = reportTable(matrix, 'summary');
    expect(text).toContain('debian-12/amd64: 30 built, 0 excluded, 0 failed');
    expect(text).toContain('debian-12/arm64: 0 built, 0 excluded, 1 failed');
    expect(text).toContain('debian-13/amd64: 0 built, 1 excluded, 0 failed');
    expect(text).toMatch(/6\.1\.0-99-arm64\s+failed\s+1\.0 s\s+make-failed: boom/);
    expect(text).not.toContain('6.1.0-3-amd64');
    expect(text).toContain('30 built, 1 excluded, 1 failed in 60.0 s');
    expect(text).toContain('--table full lists all 32');
  });

  it('auto is summary above 20 kernels and full up to 20', () => {
    expect(reportTable(matrix)).toBe(reportTable(matrix, 'summary'));
    const small = report(matrix.kernels.slice(0, 3));
    expect(reportTable(small)).toBe(reportTable(small, 'full'));
  });

  it('full: a row per kernel, grouped by release and arch, plus the group lines', () => {
    const text = reportTable(report([row('k13', 'debian-13', 'amd64', 'built'), row('k12', 'debian-12', 'amd64', 'built')]), 'full');
    expect(text).toMatch(/KERNEL\s+VERDICT\s+TIME/);
    expect(text.indexOf('k12')).toBeLessThan(text.indexOf('k13'));
    expect(text).toContain('debian-12/amd64: 1 built, 0 excluded, 0 failed');
    expect(text).not.toContain('--table full');
  });

  it('summary with no failure has no kernel table at all', () => {
    const text = reportTable(report([row('k', 'debian-12', 'amd64', 'built')]), 'summary');
    expect(text).not.toContain('KERNEL');
    expect(text.split('\n')).toEqual([
      'hello 1.0',
      'debian-12/amd64: 1 built, 0 excluded, 0 failed',
      '1 built, 0 excluded, 0 failed in 60.0 s',
      '(--table full lists all 1 kernels)',
    ]);
  });
});
