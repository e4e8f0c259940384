import type { BuildEvent } from '../coordinator/build.js';
import type { BuildReport } from '../report/report.js';

/** Everything the CLI prints: progress on stderr, results on stdout. */
export function formatTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  return s < 120 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export function reportTable(report: BuildReport): string {
  const rows = report.kernels.map((k) => [
    k.kernel,
    k.verdict + (k.cached ? ' (cached)' : ''),
    formatDuration(k.durationMs),
    k.verdict === 'failed' ? `${k.reason ?? ''}: ${k.firstError ?? k.message ?? ''}` : k.verdict === 'excluded' ? (k.message ?? '') : (k.tarball?.path ?? ''),
  ]);
  const { built, excluded, failed } = report.summary;
  return [
    `${report.module} ${report.version}`,
    formatTable(['KERNEL', 'VERDICT', 'TIME', 'DETAIL'], rows),
    '',
    `${built} built, ${excluded} excluded, ${failed} failed in ${formatDuration(report.durationMs)}` +
      (report.fullTarball ? `; full tarball ${report.fullTarball.path}` : ''),
    ...report.warnings.map((w) => `warning: ${w}`),
  ].join('\n');
}

/** One line per change, so that CI logs and terminals read the same. */
export function progressPrinter(write: (line: string) => void): (event: BuildEvent) => void {
  let total = 0;
  let done = 0;
  return (event) => {
    switch (event.type) {
      case 'note':
      case 'warning':
        write(`${event.type}: ${event.text}`);
        break;
      case 'plan':
        total = event.targets.length;
        write(`building ${event.source} for ${total} kernel(s) via ${event.where}`);
        break;
      case 'kernel':
        if (event.state !== 'queued') write(`[${done}/${total}] ${event.kernel}: ${event.state}${event.detail ? ` (${event.detail})` : ''}`);
        break;
      case 'kernel-done':
        done++;
        write(`[${done}/${total}] ${event.kernel}: ${event.record.verdict}${event.cached ? ' (cached)' : ''} in ${formatDuration(event.record.durationMs)}${event.record.firstError ? `: ${event.record.firstError}` : ''}`);
        break;
    }
  };
}
