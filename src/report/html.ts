import { createHash } from 'node:crypto';
import { compareKernels } from '../matrix/kernel-target.js';
import { groupLine, reportGroups } from './groups.js';
import type { BuildReport, KernelReport, RegressionReport } from './report.js';
import { htmlText, safeHref } from './html-text.js';
import { debianArchOf as debianArch } from './release-arch.js';
import { REPORT_CSS, REPORT_SCRIPT } from './html-assets.js';

/**
 * Pure: report.json as one self-contained report.html for people. A matrix with a row per
 * module and a column per kernel, grouped by release and arch; each cell says its state by
 * colour AND by letter, opens to show the first error and links to the logs (paths relative
 * to the out dir, so the out dir can be moved or served as CI artifacts). Nothing is fetched
 * when it is viewed: the CSS and script are inline and a Content-Security-Policy allows only
 * those two, by hash, so text from a stranger's Makefile that slipped past escaping still
 * could not run or load anything.
 */

/** What a cell shows: the build's verdict, refined by load verification when it ran. */
export type CellState = 'built' | 'loaded' | 'load-failed' | 'not-verified' | 'excluded' | 'failed';

export const CELL_STATES: ReadonlyArray<{ state: CellState; letter: string; label: string }> = [
  { state: 'loaded', letter: 'L', label: 'built and loaded' },
  { state: 'built', letter: 'B', label: 'built' },
  { state: 'not-verified', letter: 'B?', label: 'built, load not verified' },
  { state: 'load-failed', letter: 'LF', label: 'built, load failed' },
  { state: 'failed', letter: 'F', label: 'build failed' },
  { state: 'excluded', letter: 'X', label: 'excluded by dkms.conf' },
];

export function cellState(k: KernelReport): CellState {
  if (k.verdict !== 'built' || !k.load) return k.verdict;
  return k.load.verdict === 'loaded' ? 'loaded' : k.load.verdict;
}

interface Column {
  key: string;
  release: string;
  arch: string;
  kernel: string;
}

export function renderHtml(report: BuildReport): string {
  const groups = reportGroups(report.kernels).map((g) => ({
    ...g,
    names: [...new Set(g.kernels.map((k) => k.kernel))].sort(compareKernels),
  }));
  const columns: Column[] = groups.flatMap((g) => g.names.map((kernel) => ({ key: colKey(g.release, g.arch, kernel), release: g.release, arch: g.arch, kernel })));
  const rows = moduleRows(report);
  const counts = new Map<CellState, number>(CELL_STATES.map((s) => [s.state, 0]));
  for (const k of report.kernels) counts.set(cellState(k), (counts.get(cellState(k)) ?? 0) + 1);

  const modules = rows.map((r) => r.label).join(', ');
  const script = REPORT_SCRIPT;
  const csp = `default-src 'none'; style-src '${sha256(REPORT_CSS)}'; script-src '${sha256(script)}'; img-src 'none'; form-action 'none'; base-uri 'none'`;
  const option = (v: string) => `<option value="${htmlText(v)}">${htmlText(v)}</option>`;
  const releases = [...new Set(groups.map((g) => g.release))];
  const arches = [...new Set(groups.map((g) => g.arch))];

  const head = [
    '<tr><th rowspan="2" class="module-h">module</th>',
    ...groups.map(
      (g) => `<th colspan="${g.names.length}" class="group" data-release="${htmlText(g.release)}" data-arch="${htmlText(g.arch)}">${htmlText(`${g.release} / ${g.arch}`)}</th>`,
    ),
    '</tr><tr>',
    ...columns.map((c, i) => `<th class="kernel" data-col="${i}" data-release="${htmlText(c.release)}" data-arch="${htmlText(c.arch)}"><span>${htmlText(c.kernel)}</span></th>`),
    '</tr>',
  ].join('');
  const body = rows
    .map((r) => {
      const cells = columns.map((c, i) => {
        const k = r.byColumn.get(c.key);
        const where = `data-col="${i}" data-release="${htmlText(c.release)}" data-arch="${htmlText(c.arch)}"`;
        return k ? cellHtml(k, r.label, where) : `<td class="none" ${where}>&ndash;</td>`;
      });
      return `<tr data-module="${htmlText(r.label)}"><th class="module" scope="row">${htmlText(r.label)}</th>${cells.join('')}</tr>`;
    })
    .join('\n');

  const problems = report.kernels.filter((k) => ['failed', 'load-failed'].includes(cellState(k)));
  const summary = CELL_STATES.filter((s) => (counts.get(s.state) ?? 0) > 0 || ['built', 'excluded', 'failed'].includes(s.state)).map(
    (s) => `<li class="c-${s.state}" data-count="${s.state}"><b class="letter">${s.letter}</b> ${htmlText(s.label)}: <b>${counts.get(s.state) ?? 0}</b></li>`,
  );
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${htmlText(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>kfarm: ${htmlText(modules)}</title>
<style>${REPORT_CSS}</style>
</head>
<body>
<header>
<h1>kfarm report: ${htmlText(modules)}</h1>
<p class="meta">kfarm ${htmlText(report.tool.version)} &middot; started ${htmlText(report.startedAt)} &middot; ${htmlText(formatMs(report.durationMs))} &middot; ${report.kernels.length} results</p>
<ul class="summary" id="summary">${summary.join('')}</ul>
<p class="meta groups">${groups.map((g) => htmlText(groupLine(g))).join(' &middot; ')}</p>
${report.warnings.length ? `<details class="warnings"><summary>${report.warnings.length} warning(s)</summary><ul>${report.warnings.map((w) => `<li>${htmlText(w)}</li>`).join('')}</ul></details>` : ''}
</header>
${regressionsHtml(report.regressions ?? [])}
<form class="filters" id="filters">
<label>release <select id="f-release"><option value="">all</option>${releases.map(option).join('')}</select></label>
<label>arch <select id="f-arch"><option value="">all</option>${arches.map(option).join('')}</select></label>
<label>verdict <select id="f-verdict"><option value="">all</option>${CELL_STATES.map((s) => `<option value="${s.state}">${s.letter} ${htmlText(s.label)}</option>`).join('')}</select></label>
<output id="shown">${report.kernels.length} of ${report.kernels.length} results shown</output>
</form>
<div class="matrix-wrap">
<table class="matrix" id="matrix">
<thead>${head}</thead>
<tbody>
${body}
</tbody>
</table>
</div>
<ul class="legend">${CELL_STATES.map((s) => `<li class="c-${s.state}"><b class="letter">${s.letter}</b> ${htmlText(s.label)}</li>`).join('')}</ul>
${problems.length ? `<h2>Failures</h2><ul class="problems">${problems.map((k) => problemHtml(k, rowLabel(report, k))).join('')}</ul>` : ''}
<script>${script}</script>
</body>
</html>
`;
}

function cellHtml(k: KernelReport, module: string, where: string): string {
  const state = cellState(k);
  const spec = CELL_STATES.find((s) => s.state === state) ?? { letter: '?', label: state };
  const firstError = state === 'load-failed' ? k.load?.firstError : k.firstError;
  const reason = state === 'load-failed' || state === 'not-verified' ? k.load?.reason : k.reason;
  const title = [`${module} on ${k.kernel}: ${spec.label}`, reason, firstError ?? (k.verdict !== 'built' ? k.message : undefined)].filter(Boolean).join('\n');
  const facts: string[] = [
    `<div class="state">${htmlText(spec.label)}${reason ? ` (${htmlText(reason)})` : ''}</div>`,
    ...(firstError ? [`<div class="first-error">${htmlText(firstError)}</div>`] : []),
    ...(k.message && k.verdict !== 'built' && k.message !== firstError ? [`<div class="message">${htmlText(k.message)}</div>`] : []),
    `<div class="facts">${htmlText(formatMs(k.durationMs))}${k.cached ? ', cached' : ''}</div>`,
    ...(k.load && (k.load.bootMs !== undefined || k.load.accel)
      ? [
          `<div class="facts">${htmlText([k.load.accel, k.load.bootMs !== undefined ? `boot ${formatMs(k.load.bootMs)}` : '', k.load.loadMs !== undefined ? `load ${formatMs(k.load.loadMs)}` : '', k.load.secureBoot !== undefined ? `Secure Boot ${k.load.secureBoot ? 'on' : 'off'}, lockdown ${k.load.lockdown ?? 'none'}` : ''].filter(Boolean).join(', '))}</div>`,
        ]
      : []),
    linkHtml(k.log, 'build log'),
    ...(k.load?.log ? [linkHtml(k.load.log, 'console log')] : []),
  ];
  return `<td class="cell c-${state}" data-verdict="${state}" data-kernel="${htmlText(k.kernel)}" ${where} title="${htmlText(title)}"><details><summary><b class="letter">${spec.letter}</b></summary><div class="pop">${facts.join('')}</div></details></td>`;
}

function problemHtml(k: KernelReport, module: string): string {
  const state = cellState(k);
  const firstError = (state === 'load-failed' ? k.load?.firstError : k.firstError) ?? k.message ?? '';
  const reason = (state === 'load-failed' ? k.load?.reason : k.reason) ?? state;
  const log = state === 'load-failed' && k.load?.log ? k.load.log : k.log;
  return `<li class="c-${state}"><b class="letter">${state === 'failed' ? 'F' : 'LF'}</b> ${htmlText(module)} on ${htmlText(k.kernel)} (${htmlText(reason)}): <code>${htmlText(firstError)}</code> ${linkHtml(log, 'log')}</li>`;
}

const REGRESSION_LABELS: Record<RegressionReport['state'], string> = { broken: 'open', 'never-built': 'never built', fixed: 'fixed' };

/** A farm build's regression windows (report.json `regressions`): open ones first, whatever order the file has. */
function regressionsHtml(regressions: readonly RegressionReport[]): string {
  if (regressions.length === 0) return '';
  const order = (r: RegressionReport) => ['broken', 'never-built', 'fixed'].indexOf(r.state);
  const sorted = [...regressions].sort((a, b) => order(a) - order(b));
  const open = regressions.filter((r) => r.state === 'broken').length;
  const items = sorted.map((r) => {
    const series = `${r.module} ${r.version} on ${r.release} / ${debianArch(r.arch)}, ${r.flavour} ${r.line}`;
    return [
      `<li class="regression r-${htmlText(r.state)}" data-state="${htmlText(r.state)}" data-check="${htmlText(r.check)}" data-module="${htmlText(`${r.module} ${r.version}`)}">`,
      `<div><b class="r-state">${htmlText(REGRESSION_LABELS[r.state] ?? r.state)}</b> ${htmlText(series)} (${htmlText(r.check)}): <span class="sentence">${htmlText(r.sentence)}</span></div>`,
      r.firstError ? `<div class="first-error">${htmlText(r.firstError)}</div>` : '',
      r.changelog ? changelogHtml(r.changelog) : '',
      '</li>',
    ].join('');
  });
  return `<section class="regressions" id="regressions"><h2>Regressions${open ? ` (${open} open)` : ''}</h2><ul>${items.join('\n')}</ul></section>`;
}

function changelogHtml(c: NonNullable<RegressionReport['changelog']>): string {
  const between = c.lastGood ? `${c.lastGood.version ?? c.lastGood.kernel} and ${c.firstBad.version ?? c.firstBad.kernel}` : `${c.firstBad.version ?? c.firstBad.kernel}`;
  const cut = c.omittedEntries > 0 || c.omittedLines > 0 ? `${c.omittedEntries} more entries and ${c.omittedLines} lines not shown` : '';
  const notes = [c.note, cut].filter(Boolean).map((n) => `<p class="note">${htmlText(n ?? '')}</p>`);
  const entries = c.entries.map(
    (e) =>
      `<div class="entry"><div class="entry-head">${htmlText(`${e.package} (${e.version}) ${e.distribution}${e.urgency ? `; urgency=${e.urgency}` : ''}`)}</div><pre>${htmlText(e.body.join('\n'))}</pre>${e.maintainer ? `<div class="facts">${htmlText(`-- ${e.maintainer}  ${e.date ?? ''}`.trimEnd())}</div>` : ''}</div>`,
  );
  return `<details class="changelog"><summary>Debian changelog ${c.lastGood ? 'between' : 'of'} ${htmlText(between)}: ${c.entries.length} entr${c.entries.length === 1 ? 'y' : 'ies'}</summary>${notes.join('')}${entries.join('')}</details>`;
}

function linkHtml(rel: string, label: string): string {
  const href = safeHref(rel);
  return href ? `<a class="log" href="${htmlText(href)}">${htmlText(label)}</a>` : `<span class="log">${htmlText(label)}: ${htmlText(rel)}</span>`;
}

function moduleRows(report: BuildReport): Array<{ label: string; byColumn: Map<string, KernelReport> }> {
  const rows = new Map<string, { label: string; byColumn: Map<string, KernelReport> }>();
  for (const m of report.modules ?? [{ name: report.module, version: report.version }])
    rows.set(`${m.name} ${m.version}`, { label: `${m.name} ${m.version}`, byColumn: new Map() });
  for (const k of report.kernels) {
    const label = rowLabel(report, k);
    let row = rows.get(label);
    if (!row) rows.set(label, (row = { label, byColumn: new Map() }));
    row.byColumn.set(colKey(k.release, k.debianArch, k.kernel), k);
  }
  return [...rows.values()];
}

const rowLabel = (report: BuildReport, k: KernelReport) => `${k.module ?? report.module} ${k.version ?? report.version}`;
const colKey = (release: string, arch: string, kernel: string) => `${release}\u0000${arch}\u0000${kernel}`;

function formatMs(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  return s < 120 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function sha256(text: string): string {
  return `sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}`;
}
