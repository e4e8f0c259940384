import type { BuildEvent } from '../coordinator/build-types.js';
import { groupLine, reportGroups } from '../report/groups.js';
import type { BuildReport, KernelReport } from '../report/report.js';
import { cleanText, TEXT_LIMITS } from '../util/clean-text.js';

/**
 * Everything the CLI prints: progress on stderr, results on stdout. What came from a build
 * (names, messages, error lines, warnings) was cleaned where it entered; it is cleaned again
 * here, the last step before a terminal, so no path around those borders can reach one with
 * an escape sequence.
 */
export const shown = (text: string, max: number = TEXT_LIMITS.message) => cleanText(text, max);

export function formatTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  return s < 120 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/**
 * How the final table shows kernels: `full` a row per kernel; `summary` a line per release and
 * arch plus a row per failed kernel; `auto` (the default) is full up to AUTO_FULL_MAX kernels,
 * summary above, where 180 rows would bury the failures. Groups are printed in every view.
 */
export const TABLE_VIEWS = ['auto', 'summary', 'full'] as const;
export type TableView = (typeof TABLE_VIEWS)[number];
export const AUTO_FULL_MAX = 20;

const kernelRow = (k: KernelReport, withLoad: boolean) => [
  shown(k.kernel, 128),
  k.verdict + (k.cached ? ' (cached)' : ''),
  formatDuration(k.durationMs),
  ...(withLoad ? [loadCell(k)] : []),
  shown(
    k.verdict === 'failed'
      ? `${k.reason ?? ''}: ${k.firstError ?? k.message ?? ''}`
      : k.load?.verdict === 'load-failed'
        ? `${k.load.reason ?? ''}: ${k.load.firstError ?? ''}`
        : k.verdict === 'excluded'
          ? (k.message ?? '')
          : (k.tarball?.path ?? ''),
  ),
];

/** `loaded (kvm)`, `load-failed: unknown-symbol`, `not-verified: no-kernel-image`; `-` where no check ran */
function loadCell(k: KernelReport): string {
  const l = k.load;
  if (!l) return '-';
  if (l.verdict === 'loaded') return `loaded (${l.accel ?? '?'}${l.secureBoot ? ', secure boot' : ''})`;
  return shown(`${l.verdict}${l.reason ? `: ${l.reason}` : ''}`, 64);
}

export function reportTable(report: BuildReport, view: TableView = 'auto'): string {
  const full = view === 'full' || (view === 'auto' && report.kernels.length <= AUTO_FULL_MAX);
  const groups = reportGroups(report.kernels);
  // grouped, so that a release's kernels read together; within a group the report's order
  const listed = groups.flatMap((g) => g.kernels).filter((k) => full || k.verdict === 'failed' || k.load?.verdict === 'load-failed');
  const withLoad = report.kernels.some((k) => k.load !== undefined);
  const { built, excluded, failed } = report.summary;
  return [
    shown(`${report.module} ${report.version}`, 256),
    ...(listed.length > 0
      ? [
          formatTable(
            ['KERNEL', 'VERDICT', 'TIME', ...(withLoad ? ['LOAD'] : []), 'DETAIL'],
            listed.map((k) => kernelRow(k, withLoad)),
          ),
          '',
        ]
      : []),
    ...groups.map((g) => shown(groupLine(g), 256)),
    `${built} built, ${excluded} excluded, ${failed} failed in ${formatDuration(report.durationMs)}` +
      (report.fullTarball ? `; full tarball ${shown(report.fullTarball.path, 512)}` : ''),
    ...(full
      ? []
      : [report.summary.failed > 0 ? `(failed kernels only; --table full lists all ${report.kernels.length})` : `(--table full lists all ${report.kernels.length} kernels)`]),
    ...report.warnings.map((w) => `warning: ${shown(w, TEXT_LIMITS.warning)}`),
  ].join('\n');
}

/** The plain line for one finished kernel: `[3/180] 6.1.0-56-amd64: failed (make-failed) in 4.1 s: hello.c:3: error...` */
export function finishedLine(done: number, total: number, event: Extract<BuildEvent, { type: 'kernel-done' }>): string {
  const r = event.record;
  return (
    `[${done}/${total}] ${shown(event.kernel, 128)}: ${r.verdict}${r.verdict === 'failed' && r.reason ? ` (${shown(r.reason, 64)})` : ''}` +
    `${event.cached ? ' (cached)' : ''} in ${formatDuration(r.durationMs)}${r.firstError ? `: ${shown(r.firstError, TEXT_LIMITS.firstError)}` : ''}`
  );
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
