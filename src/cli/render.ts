import type { BuildEvent } from '../coordinator/build.js';
import type { BuildReport } from '../report/report.js';
import { cleanText, TEXT_LIMITS } from '../util/clean-text.js';

/**
 * Everything the CLI prints: progress on stderr, results on stdout. What came from a build
 * (names, messages, error lines, warnings) was cleaned where it entered; it is cleaned again
 * here, the last step before a terminal, so no path around those borders can reach one with
 * an escape sequence.
 */
const shown = (text: string, max: number = TEXT_LIMITS.message) => cleanText(text, max);

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
    shown(k.kernel, 128),
    k.verdict + (k.cached ? ' (cached)' : ''),
    formatDuration(k.durationMs),
    shown(k.verdict === 'failed' ? `${k.reason ?? ''}: ${k.firstError ?? k.message ?? ''}` : k.verdict === 'excluded' ? (k.message ?? '') : (k.tarball?.path ?? '')),
  ]);
  const { built, excluded, failed } = report.summary;
  return [
    shown(`${report.module} ${report.version}`, 256),
    formatTable(['KERNEL', 'VERDICT', 'TIME', 'DETAIL'], rows),
    '',
    `${built} built, ${excluded} excluded, ${failed} failed in ${formatDuration(report.durationMs)}` +
      (report.fullTarball ? `; full tarball ${shown(report.fullTarball.path, 512)}` : ''),
    ...report.warnings.map((w) => `warning: ${shown(w, TEXT_LIMITS.warning)}`),
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
        write(`${event.type}: ${shown(event.text, TEXT_LIMITS.warning)}`);
        break;
      case 'plan':
        total = event.targets.length;
        write(`building ${event.source} for ${total} kernel(s) via ${event.where}`);
        break;
      case 'kernel':
        if (event.state !== 'queued') write(`[${done}/${total}] ${shown(event.kernel, 128)}: ${event.state}${event.detail ? ` (${shown(event.detail)})` : ''}`);
        break;
      case 'kernel-done':
        done++;
        write(`[${done}/${total}] ${shown(event.kernel, 128)}: ${event.record.verdict}${event.cached ? ' (cached)' : ''} in ${formatDuration(event.record.durationMs)}${event.record.firstError ? `: ${shown(event.record.firstError, TEXT_LIMITS.firstError)}` : ''}`);
        break;
    }
  };
}

/**
 * An error as the CLI prints it. Messages and hints may quote a build (the tail of a log
 * that evaluated dkms.conf, a name from it): cleaned, line breaks kept.
 */
export function errorText(message: string, hint: string | undefined): string {
  const lines = [`kfarm: error: ${cleanText(message, 4 * TEXT_LIMITS.message, { newlines: true })}`];
  if (hint) lines.push(cleanText(hint, 8 * TEXT_LIMITS.message, { newlines: true }));
  return `${lines.join('\n')}\n`;
}
