import { compareKernels } from '../../matrix/kernel-target.js';
import { CELL_STATES, type CellState } from '../../report/html.js';
import { htmlText } from '../../report/html-text.js';
import { DASHBOARD_CSS, DASHBOARD_SCRIPT } from './dashboard-assets.js';
import {
  safeApiPath,
  type DashboardCell,
  type DashboardKernel,
  type DashboardModel,
  type DashboardModule,
  type DashboardRegression,
  type DashboardWorker,
} from './dashboard-model.js';
import { cspHash, pageBase } from './page-security.js';

/**
 * Pure: the dashboard model as one self-contained page. Open regressions come first, then the
 * live queue, workers and builds, then the latest modules × kernels matrix grouped by release and
 * arch (as report.html), then each module's timeline of kernels in the order they appeared.
 * Every string of the model is escaped with report.html's htmlText; links are the model's
 * /api/v1 paths behind the base, others dropped. The inline CSS and script are constants, so
 * DASHBOARD_CSP (the header kfarm serve sends with it) allows exactly them by hash. The script
 * polls `<base>/api/v1/dashboard` every 2 s (polling, not SSE: one request shape, no stream a
 * proxy may buffer) and updates the page in place.
 */

/** The Content-Security-Policy header value to send with the dashboard page. */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  `script-src ${cspHash(DASHBOARD_SCRIPT)}`,
  `style-src ${cspHash(DASHBOARD_CSS)}`,
  "connect-src 'self'",
  'img-src data:',
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

// a <meta> policy may not carry frame-ancestors (browsers ignore it there and say so)
const META_CSP = DASHBOARD_CSP.replace(/; frame-ancestors 'none'$/, '');

export interface RenderDashboardOptions {
  /** the path kfarm serve is mounted under behind a proxy; default '' (the root) */
  base?: string;
  /** seconds without a click, key or scroll after which a page that cannot show the farm's new shape reloads itself; 0 never; default 30 */
  idleReloadSeconds?: number;
}

/** The row and column order the page uses, and what the script checks a new model against. */
export interface DashboardShape {
  modules: string[];
  kernels: string[];
  regressions: string[];
}

export function dashboardShape(model: DashboardModel): DashboardShape {
  const withRegression = new Set(model.regressions.map((r) => r.module));
  const names = [...new Set([...model.modules.map((m) => m.name), ...model.cells.map((c) => c.module), ...model.timelines.map((t) => t.module)])];
  const modules = names.sort((a, b) => Number(withRegression.has(b)) - Number(withRegression.has(a)) || a.localeCompare(b, 'en', { numeric: true }));
  return { modules, kernels: kernelGroups(model.kernels).flatMap((g) => g.kernels.map((k) => k.kernel)), regressions: model.regressions.map(regressionKey) };
}

/**
 * The key the script matches regressions by (dashboard-assets.ts regKey computes the same). The
 * changelog's length is part of it: the server reads a changelog in the background, and one that
 * arrives after the page was made must reach the card.
 */
export function regressionKey(r: DashboardRegression): string {
  return [r.module, r.kind, r.series.release, r.series.arch, r.series.flavour, r.firstBad, r.changelog.length].join('\u0000');
}

export function renderDashboard(model: DashboardModel, options: RenderDashboardOptions = {}): string {
  const base = pageBase(options.base);
  const idle = Math.max(0, Math.floor(Number(options.idleReloadSeconds ?? 30)) || 0);
  const shape = dashboardShape(model);
  const groups = kernelGroups(model.kernels);
  const modules = new Map<string, DashboardModule>(model.modules.map((m) => [m.name, m]));
  const cells = new Map<string, DashboardCell>(model.cells.map((c) => [pairKey(c.module, c.kernel), c]));
  const link = (path: string | undefined, label: string) => {
    const safe = safeApiPath(path);
    return safe ? `<a class="log" href="${htmlText(base + safe)}">${htmlText(label)}</a>` : '';
  };
  const moduleLabel = (name: string) => `${name}${modules.get(name) ? ` ${modules.get(name)?.version}` : ''}`;

  const head = [
    '<tr><th rowspan="2" class="module">module</th>',
    ...groups.map((g) => `<th colspan="${g.kernels.length}" class="group">${htmlText(`${g.release} / ${g.arch}`)}</th>`),
    '</tr><tr>',
    ...groups
      .flatMap((g) => g.kernels)
      .map((k, col) => {
        const gone = `${k.goneSince ? `, gone from the archive since ${k.goneSince}` : ''}${k.prunedAt ? `, its image pruned ${k.prunedAt}` : ''}`;
        return `<th class="kernel${k.goneSince ? ' gone' : ''}" data-col="${col}" title="${htmlText(`${k.kernel} (${k.flavour}), first seen ${k.firstSeen}${gone}`)}"><span>${htmlText(k.kernel)}</span></th>`;
      }),
    '</tr>',
  ].join('');
  const rows = shape.modules
    .map((name, row) => {
      const tds = shape.kernels.map((kernel, col) => {
        const where = `data-row="${row}" data-col="${col}" data-module="${htmlText(name)}" data-kernel="${htmlText(kernel)}"`;
        const c = cells.get(pairKey(name, kernel));
        return c ? cellHtml(c, where, link) : `<td class="none" ${where}>&ndash;</td>`;
      });
      return `<tr data-module="${htmlText(name)}"><th class="module" scope="row" title="${htmlText(moduleLabel(name))}">${htmlText(moduleLabel(name))}</th>${tds.join('')}</tr>`;
    })
    .join('\n');

  const q = model.live.queue;
  const count = (k: keyof typeof q) => `<li class="q-${k}">${k} <b id="q-${k}">${Number(q[k]) || 0}</b></li>`;
  const builds = model.live.builds.map((b) => {
    const total = Math.max(Number(b.total) || 0, 1);
    return `<li data-build="${htmlText(b.id)}"><b>${htmlText(b.module ?? 'one-off source')}</b><progress max="${total}" value="${Math.min(Number(b.done) || 0, total)}"></progress><span class="done">${Number(b.done) || 0} / ${Number(b.total) || 0}</span>${link(`/api/v1/builds/${encodeURIComponent(b.id)}/report`, b.id) || `<span class="facts">${htmlText(b.id)}</span>`}</li>`;
  });
  const workers = model.live.workers.map((w) => {
    const gone = w.state === 'gone';
    return `<tr data-worker="${htmlText(w.worker)}" data-state="${gone ? 'gone' : 'live'}"${gone ? ' class="gone"' : ''}><td class="host" title="${htmlText(w.worker)}">${htmlText(w.host)}</td><td class="images">${htmlText(imagesText(w.images))}</td><td class="running">${Number(w.running) || 0} / ${Number(w.concurrency) || 0}</td><td class="seen">${htmlText(w.lastSeen)}</td><td class="state">${htmlText(gone ? `gone since ${w.goneSince ?? '?'}` : 'live')}</td></tr>`;
  });
  const regressions = [...model.regressions].sort((a, b) => a.module.localeCompare(b.module) || regressionKey(a).localeCompare(regressionKey(b)));
  const colOf = new Map(shape.kernels.map((k, i) => [k, i]));
  const firstSeen = new Map(model.kernels.map((k) => [k.kernel, k.firstSeen]));
  const timelineOf = new Map(model.timelines.map((t) => [t.module, t]));
  const timelines = shape.modules.map((name, row) => {
    const entries = (timelineOf.get(name)?.entries ?? []).map((e) => {
      const s = e.verdict ? stateOf(e.verdict, e.load) : undefined;
      const spec = s ? STATE_OF.get(s) : undefined;
      const seen = firstSeen.get(e.kernel) ?? '';
      return `<li class="c-${s ?? 'none'}" data-row="${row}" data-col="${colOf.get(e.kernel) ?? -1}" title="${htmlText(`${e.kernel}: ${spec?.label ?? 'no result yet'}, first seen ${seen}`)}"><b class="letter">${spec ? spec.letter : '&ndash;'}</b> ${htmlText(e.kernel)} <span class="when">${htmlText(seen.slice(0, 10))}</span></li>`;
    });
    const settings = modules.get(name)?.settings;
    const facts = settings
      ? [
          settings.formats.length ? `formats ${settings.formats.join(', ')}` : 'DKMS tarballs',
          `kernels ${settings.kernels ?? 'all'}`,
          ...(settings.verify ? [`verify ${settings.verify}`] : []),
        ]
      : [];
    return `<details class="timeline-module" open data-module="${htmlText(name)}"><summary>${htmlText(moduleLabel(name))}</summary>${facts.length ? `<p class="meta">${htmlText(facts.join(' \u00b7 '))}</p>` : ''}<ol class="timeline">${entries.join('')}</ol></details>`;
  });

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${htmlText(META_CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>kfarm dashboard</title>
<style>${DASHBOARD_CSS}</style>
</head>
<body data-base="${htmlText(base)}" data-idle-reload="${idle}">
<header>
<h1>kfarm dashboard</h1>
<p class="meta">${shape.modules.length} modules &middot; ${shape.kernels.length} kernels &middot; ${model.regressions.length} open regressions &middot; updated <span id="updated">${htmlText(model.generatedAt)}</span> &middot; <span id="conn">loaded</span></p>
<p class="notice" id="signed-out" hidden>Signed out. <a href="${htmlText(`${base}/login`)}">Log in</a> again.</p>
<div class="notice" id="stale" hidden>The farm has new modules, kernels or regressions. <button type="button" id="reload">Reload</button></div>
</header>
<section id="regressions">
<h2>Open regressions (${model.regressions.length})</h2>
${regressions.length ? `<div class="cards">${regressions.map((r) => regressionHtml(r, link)).join('\n')}</div>` : '<p class="meta">None: every module builds and loads where it did before.</p>'}
</section>
<section id="live">
<h2>Queue and workers</h2>
<ul class="counts" id="queue">${(['waiting', 'active', 'delayed', 'failed'] as const).map(count).join('')}</ul>
<h3>Builds in flight</h3>
<ul class="builds" id="builds">${builds.join('')}</ul>
<p class="meta" id="builds-none"${builds.length ? ' hidden' : ''}>No build running.</p>
<h3>Workers</h3>
<div class="scroll"><table class="plain"><thead><tr><th>host</th><th>kernels</th><th>running</th><th>last seen</th><th>state</th></tr></thead><tbody id="workers">${workers.join('')}</tbody></table></div>
<p class="meta" id="workers-none"${workers.length ? ' hidden' : ''}>No worker has reported.</p>
</section>
<section id="latest">
<h2>Latest results</h2>
<div class="matrix-wrap">
<table class="matrix" id="matrix">
<thead>${head}</thead>
<tbody>
${rows}
</tbody>
</table>
</div>
<ul class="legend">${CELL_STATES.map((s) => `<li class="c-${s.state}"><b class="letter">${s.letter}</b> ${htmlText(s.label)}</li>`).join('')}</ul>
</section>
<section id="timelines">
<h2>Kernels as they appeared</h2>
${timelines.join('\n')}
</section>
<script type="application/json" id="shape">${jsonForScript(shape)}</script>
<script>${DASHBOARD_SCRIPT}</script>
</body>
</html>
`;
}

const STATE_OF = new Map(CELL_STATES.map((s) => [s.state, s]));

/** A worker's build images in one line: "debian-12 x86_64: 6.1.0-41-amd64, 6.1.0-42-amd64 (+3)" (dashboard-assets.ts imagesText says the same). */
export function imagesText(images: DashboardWorker['images']): string {
  return (Array.isArray(images) ? images : [])
    .map((i) => `${i.name} ${i.arch}: ${(Array.isArray(i.kernels) ? i.kernels : []).join(', ')}${Number(i.more) > 0 ? ` (+${Number(i.more)})` : ''}`)
    .join('; ');
}

type Link = (path: string | undefined, label: string) => string;

function cellHtml(c: DashboardCell, where: string, link: Link): string {
  const state = stateOf(c.verdict, c.load);
  const spec = STATE_OF.get(state) ?? { letter: '?', label: state };
  const title = [`${c.module} ${c.version} on ${c.kernel}: ${spec.label}`, c.reason, c.firstError].filter(Boolean).join('\n');
  const pop = [
    `<div class="state">${htmlText(spec.label)}${c.reason ? ` (${htmlText(c.reason)})` : ''}</div>`,
    c.firstError ? `<div class="first-error">${htmlText(c.firstError)}</div>` : '',
    `<div class="facts">${htmlText(`${c.version} \u00b7 ${c.buildId} \u00b7 ${c.at}`)}</div>`,
    link(c.links.log, 'build log'),
    link(c.links.loadLog, 'console log'),
    link(c.links.report, 'report'),
  ];
  return `<td class="cell c-${state}" data-verdict="${state}" data-at="${htmlText(c.at)}" ${where} title="${htmlText(title)}"><details><summary><b class="letter">${spec.letter}</b></summary><div class="pop">${pop.join('')}</div></details></td>`;
}

function regressionHtml(r: DashboardRegression, link: Link): string {
  const series = [r.series.release, r.series.arch, r.series.flavour, ...(r.series.line ? [r.series.line] : [])].join(' / ');
  const changelog = r.changelog.length
    ? `<details class="changelog" open><summary>${r.changelog.length} changelog ${r.changelog.length === 1 ? 'entry' : 'entries'} between them</summary>${r.changelog
        .map((e) => `<p class="version">${htmlText(e.version)}</p><pre>${htmlText(e.lines.join('\n'))}</pre>`)
        .join('')}</details>`
    : '<p class="meta">No changelog entries between them.</p>';
  return `<article class="card k-${r.kind === 'load' ? 'load' : 'build'}" data-module="${htmlText(r.module)}" data-kind="${r.kind === 'load' ? 'load' : 'build'}">
<h3>${htmlText(r.module)}</h3>
<p class="series">${htmlText(series)} &middot; ${r.kind === 'load' ? 'load' : 'build'}${r.since ? ` &middot; since ${htmlText(r.since)}` : ''}</p>
<p class="sentence">${htmlText(r.sentence)}</p>
<div class="window"><span class="good" title="last good">${htmlText(r.lastGood)}</span><span aria-hidden="true">&rarr;</span><span class="bad" title="first bad">${htmlText(r.firstBad)}</span></div>
${r.firstError ? `<pre class="first-error">${htmlText(r.firstError)}</pre>` : ''}
${changelog}
${r.changelogNote ? `<p class="meta changelog-note">${htmlText(r.changelogNote)}</p>` : ''}
<p>${link(r.links?.log, 'build log')}${link(r.links?.loadLog, 'console log')}${link(r.links?.report, 'report')}</p>
</article>`;
}

function stateOf(verdict: DashboardCell['verdict'], load: DashboardCell['load']): CellState {
  if (verdict !== 'built' || !load) return verdict;
  return load === 'loaded' ? 'loaded' : load;
}

/** Kernel columns grouped by release then Debian arch (numeric order, as report.html), kernels in version order. */
function kernelGroups(kernels: readonly DashboardKernel[]): Array<{ release: string; arch: string; kernels: DashboardKernel[] }> {
  const groups = new Map<string, { release: string; arch: string; kernels: DashboardKernel[] }>();
  const seen = new Set<string>();
  for (const k of kernels) {
    if (seen.has(k.kernel)) continue; // one column per kernel name: cells are keyed by it
    seen.add(k.kernel);
    const key = `${k.release}\u0000${k.arch}`;
    const group = groups.get(key) ?? { release: k.release, arch: k.arch, kernels: [] };
    groups.set(key, group);
    group.kernels.push(k);
  }
  const order = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });
  return [...groups.values()]
    .sort((a, b) => order(a.release, b.release) || order(a.arch, b.arch))
    .map((g) => ({ ...g, kernels: g.kernels.sort((a, b) => compareKernels(a.kernel, b.kernel)) }));
}

/** JSON inside a <script type="application/json"> block: nothing in it can close the element or open a comment. */
function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

const pairKey = (module: string, kernel: string) => `${module}\u0000${kernel}`;
