import { CELL_STATES } from '../../report/html.js';
import { DASHBOARD_SCHEMA_VERSION, SAFE_API_PATH } from './dashboard-model.js';
import { VERDICT_CSS } from '../../report/html-assets.js';

/**
 * The dashboard page's inline CSS and script. Both are constants (no data is ever spliced into
 * them), so their sha256 in the Content-Security-Policy is fixed. The script polls
 * `<base>/api/v1/dashboard` every 2 s and updates the page in place: the queue counts, the
 * workers and builds in flight, every matrix cell and timeline entry. It builds DOM nodes with
 * textContent and setAttribute only (no innerHTML), takes class names only from its own table
 * of states and links only when they pass SAFE_API_PATH. A model whose shape the page cannot
 * hold (a new module, kernel or regression) shows a "reload" notice, and reloads the page by
 * itself once nobody has touched it for the body's data-idle-reload seconds (a wall display
 * shows a new kernel's column; a person reading a cell is not interrupted).
 */

export const DASHBOARD_CSS = `
:root { font: 15px/1.45 system-ui, sans-serif; color: #1b1b1b; background: #fff; }
* { box-sizing: border-box; }
body { margin: 0 auto; padding: .75rem; max-width: 90rem; overflow-wrap: anywhere; }
h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
h2 { font-size: 1.1rem; margin: 1.25rem 0 .5rem; }
h3 { font-size: 1rem; margin: .75rem 0 .35rem; }
.meta { color: #555; margin: 0 0 .5rem; }
[hidden] { display: none !important; }
.notice { background: #fff4d6; border: 1px solid #e0c060; padding: .5rem .75rem; border-radius: 6px; margin: .5rem 0; }
.notice button, .notice a { font: inherit; }
#conn.bad { color: #8a1010; font-weight: bold; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 24rem), 1fr)); gap: .75rem; }
.card { border: 1px solid #0002; border-left: 6px solid #c0392b; border-radius: 6px; padding: .6rem .75rem; min-width: 0; }
.card.k-load { border-left-color: #e67e22; }
.card h3 { margin: 0 0 .25rem; }
.card .series { color: #555; margin: 0 0 .35rem; }
.card .sentence { font-weight: 600; margin: .25rem 0; }
.window { display: flex; flex-wrap: wrap; gap: .25rem .5rem; align-items: center; font-family: ui-monospace, monospace; font-size: .85rem; margin: .25rem 0; }
.window .good { background: #d7f0d8; padding: 0 .3rem; border-radius: 3px; }
.window .bad { background: #f7b7b2; padding: 0 .3rem; border-radius: 3px; }
.first-error, .changelog pre { font-family: ui-monospace, monospace; font-size: .8rem; white-space: pre-wrap; word-break: break-word; margin: .25rem 0; }
.first-error { color: #8a1010; }
.changelog summary { cursor: pointer; }
.changelog .version { font-family: ui-monospace, monospace; font-weight: 600; margin: .4rem 0 0; }
.changelog pre { background: #f6f6f6; padding: .3rem .4rem; border-radius: 4px; }
.counts { list-style: none; padding: 0; margin: .25rem 0; display: flex; flex-wrap: wrap; gap: .4rem; }
.counts li { padding: .2rem .6rem; border-radius: 4px; border: 1px solid #0002; background: #f4f4f8; }
.counts li.q-failed b { color: #8a1010; }
.builds { list-style: none; padding: 0; margin: 0; }
.builds li { display: flex; flex-wrap: wrap; gap: .25rem .6rem; align-items: center; padding: .2rem 0; }
.builds progress { width: 10rem; max-width: 100%; }
.scroll, .matrix-wrap { overflow-x: auto; max-width: 100%; }
table.plain { border-collapse: collapse; }
.plain th, .plain td { text-align: left; padding: .15rem .6rem .15rem 0; border-bottom: 1px solid #eee; }
.plain th, .plain td + td { white-space: nowrap; overflow-wrap: normal; }
.plain td.images { white-space: normal; overflow-wrap: anywhere; min-width: 12rem; font-size: .85rem; }
.plain tr.gone { color: #777; }
.plain tr.gone td.state { color: #8a1010; }
table.matrix { border-collapse: collapse; }
.matrix th, .matrix td { border: 1px solid #ccc; padding: 0; text-align: center; vertical-align: top; }
.matrix th.group { background: #eef; padding: .2rem .4rem; white-space: nowrap; }
.matrix th.kernel { font-weight: normal; font-size: .8rem; padding: .3rem .2rem; white-space: nowrap; vertical-align: bottom; }
.matrix th.kernel span { writing-mode: vertical-rl; transform: rotate(180deg); }
.matrix th.kernel.gone { color: #888; font-style: italic; }
.matrix th.module { text-align: left; padding: .2rem .5rem; white-space: nowrap; position: sticky; left: 0; background: #fff; max-width: 12rem; overflow: hidden; text-overflow: ellipsis; }
.matrix td.none { color: #999; padding: .3rem; }
.matrix td.cell summary { cursor: pointer; list-style: none; padding: .3rem .5rem; }
.matrix td.cell summary::-webkit-details-marker { display: none; }
.pop { text-align: left; padding: .3rem .5rem; width: 18rem; max-width: 80vw; font-size: .8rem; background: #fff; border-top: 1px solid #0002; white-space: normal; }
${VERDICT_CSS}
.legend { list-style: none; padding: 0; margin: .5rem 0; display: flex; flex-wrap: wrap; gap: .4rem; }
.legend li { padding: .15rem .5rem; border-radius: 4px; border: 1px solid #0002; }
.timeline-module summary { cursor: pointer; font-weight: 600; }
.timeline { list-style: none; padding: 0; margin: .35rem 0 .75rem; display: flex; flex-wrap: wrap; gap: .3rem; }
.timeline li { padding: .1rem .4rem; border-radius: 4px; border: 1px solid #0002; font-size: .8rem; }
.timeline li.c-none { background: #fff; color: #888; }
.timeline .when { color: #555; }
`;

const STATES_JSON = JSON.stringify(Object.fromEntries(CELL_STATES.map((s) => [s.state, [s.letter, s.label]])));

export const DASHBOARD_SCRIPT = `
(function () {
  'use strict';
  var STATES = ${STATES_JSON};
  var SAFE = new RegExp(${JSON.stringify(SAFE_API_PATH.source)}, ${JSON.stringify(SAFE_API_PATH.flags)});
  var body = document.body;
  var base = body.getAttribute('data-base') || '';
  var idleMs = Number(body.getAttribute('data-idle-reload') || '0') * 1000;
  var lastInput = Date.now();
  ['pointerdown', 'keydown', 'wheel', 'touchstart'].forEach(function (t) {
    document.addEventListener(t, function () { lastInput = Date.now(); }, { passive: true });
  });
  var shape = JSON.parse(document.getElementById('shape').textContent);
  var rowOf = Object.create(null), colOf = Object.create(null), regs = Object.create(null);
  shape.modules.forEach(function (m, i) { rowOf['m' + m] = i; });
  shape.kernels.forEach(function (k, i) { colOf['k' + k] = i; });
  shape.regressions.forEach(function (r) { regs['r' + r] = true; });
  var byId = function (id) { return document.getElementById(id); };
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function str(v) { return typeof v === 'string' ? v : ''; }
  function num(v) { return typeof v === 'number' && isFinite(v) ? v : 0; }
  // render-dashboard.ts imagesText says the same
  function imagesText(images) {
    return (Array.isArray(images) ? images : []).map(function (i) {
      var ks = (Array.isArray(i.kernels) ? i.kernels : []).map(str).join(', ');
      return str(i.name) + ' ' + str(i.arch) + ': ' + ks + (num(i.more) > 0 ? ' (+' + num(i.more) + ')' : '');
    }).join('; ');
  }
  function stateOf(c) {
    var s = c.verdict !== 'built' || !c.load ? c.verdict : (c.load === 'loaded' ? 'loaded' : c.load);
    return Object.prototype.hasOwnProperty.call(STATES, s) ? s : null;
  }
  function link(path, label) {
    if (typeof path !== 'string' || !SAFE.test(path)) return null;
    var a = el('a', 'log', label);
    a.setAttribute('href', base + path);
    return a;
  }
  function regKey(r) { return [r.module, r.kind, r.series && r.series.release, r.series && r.series.arch, r.series && r.series.flavour, r.firstBad, Array.isArray(r.changelog) ? r.changelog.length : 0].join('\\u0000'); }
  function cells(selector) {
    var map = {};
    Array.prototype.forEach.call(document.querySelectorAll(selector), function (e) { map[e.getAttribute('data-row') + ':' + e.getAttribute('data-col')] = e; });
    return map;
  }
  function fillCell(td, c, s) {
    while (td.firstChild) td.removeChild(td.firstChild);
    td.className = 'cell c-' + s;
    td.setAttribute('data-verdict', s);
    var label = STATES[s][1];
    var reason = str(c.reason), first = str(c.firstError);
    td.setAttribute('title', [str(c.module) + ' ' + str(c.version) + ' on ' + str(c.kernel) + ': ' + label, reason, first].filter(Boolean).join('\\n'));
    var details = el('details'), summary = el('summary'), pop = el('div', 'pop');
    summary.appendChild(el('b', 'letter', STATES[s][0]));
    details.appendChild(summary);
    pop.appendChild(el('div', 'state', label + (reason ? ' (' + reason + ')' : '')));
    if (first) pop.appendChild(el('div', 'first-error', first));
    pop.appendChild(el('div', 'facts', str(c.version) + ' \\u00b7 ' + str(c.buildId) + ' \\u00b7 ' + str(c.at)));
    var links = c.links || {};
    [[links.log, 'build log'], [links.loadLog, 'console log'], [links.report, 'report']].forEach(function (l) {
      var a = link(l[0], l[1]);
      if (a) pop.appendChild(a);
    });
    details.appendChild(pop);
    td.appendChild(details);
  }
  function apply(m) {
    // a model of another shape (a newer kfarm serve) is not read at all: the page says reload
    if (!m || m.schemaVersion !== ${DASHBOARD_SCHEMA_VERSION}) { byId('stale').hidden = false; return; }
    var stale = false;
    var models = Array.isArray(m.modules) ? m.modules : [];
    var kernels = Array.isArray(m.kernels) ? m.kernels : [];
    var regressions = Array.isArray(m.regressions) ? m.regressions : [];
    // a module or kernel gone from the model leaves its row or column as it was; anything new, or a regression opened or closed, needs the page rebuilt
    if (regressions.length !== shape.regressions.length) stale = true;
    models.forEach(function (x) { if (!(('m' + x.name) in rowOf)) stale = true; });
    kernels.forEach(function (x) { if (!(('k' + x.kernel) in colOf)) stale = true; });
    regressions.forEach(function (r) { if (!regs['r' + regKey(r)]) stale = true; });
    var tds = cells('#matrix td[data-row]');
    (Array.isArray(m.cells) ? m.cells : []).forEach(function (c) {
      var s = stateOf(c), td = tds[rowOf['m' + c.module] + ':' + colOf['k' + c.kernel]];
      if (!td || !s) { stale = true; return; }
      if (td.getAttribute('data-verdict') !== s || td.getAttribute('data-at') !== str(c.at)) {
        fillCell(td, c, s);
        td.setAttribute('data-at', str(c.at));
      }
    });
    var lis = cells('#timelines li[data-row]');
    (Array.isArray(m.timelines) ? m.timelines : []).forEach(function (t) {
      (Array.isArray(t.entries) ? t.entries : []).forEach(function (e) {
        var li = lis[rowOf['m' + t.module] + ':' + colOf['k' + e.kernel]];
        if (!li) { stale = true; return; }
        var s = e.verdict ? stateOf(e) : 'none';
        if (!s) return;
        li.className = 'c-' + s;
        li.firstChild.textContent = s === 'none' ? '\\u2013' : STATES[s][0];
      });
    });
    var live = m.live || {}, q = live.queue || {};
    ['waiting', 'active', 'delayed', 'failed'].forEach(function (k) { byId('q-' + k).textContent = String(num(q[k])); });
    var builds = byId('builds');
    while (builds.firstChild) builds.removeChild(builds.firstChild);
    (Array.isArray(live.builds) ? live.builds : []).forEach(function (b) {
      var li = el('li');
      li.setAttribute('data-build', str(b.id));
      li.appendChild(el('b', null, str(b.module) || 'one-off source'));
      var bar = el('progress');
      bar.max = Math.max(num(b.total), 1);
      bar.value = Math.min(num(b.done), bar.max);
      li.appendChild(bar);
      li.appendChild(el('span', 'done', num(b.done) + ' / ' + num(b.total)));
      var a = link('/api/v1/builds/' + encodeURIComponent(str(b.id)) + '/report', str(b.id));
      li.appendChild(a || el('span', 'facts', str(b.id)));
      builds.appendChild(li);
    });
    byId('builds-none').hidden = builds.children.length > 0;
    var workers = byId('workers');
    while (workers.firstChild) workers.removeChild(workers.firstChild);
    (Array.isArray(live.workers) ? live.workers : []).forEach(function (w) {
      var tr = el('tr'), gone = w.state === 'gone';
      tr.setAttribute('data-worker', str(w.worker));
      tr.setAttribute('data-state', gone ? 'gone' : 'live');
      if (gone) tr.className = 'gone';
      var host = el('td', 'host', str(w.host));
      host.setAttribute('title', str(w.worker));
      tr.appendChild(host);
      tr.appendChild(el('td', 'images', imagesText(w.images)));
      tr.appendChild(el('td', 'running', num(w.running) + ' / ' + num(w.concurrency)));
      tr.appendChild(el('td', 'seen', str(w.lastSeen)));
      tr.appendChild(el('td', 'state', gone ? 'gone since ' + (str(w.goneSince) || '?') : 'live'));
      workers.appendChild(tr);
    });
    byId('workers-none').hidden = workers.children.length > 0;
    byId('updated').textContent = str(m.generatedAt);
    byId('stale').hidden = !stale;
    if (stale && idleMs > 0 && Date.now() - lastInput >= idleMs) location.reload();
  }
  var conn = byId('conn');
  function status(text, bad) { conn.textContent = text; conn.className = bad ? 'bad' : ''; }
  var busy = false;
  function poll() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(base + '/api/v1/dashboard', { credentials: 'same-origin', headers: { accept: 'application/json' }, cache: 'no-store' })
      .then(function (r) {
        if (r.status === 401 || r.status === 403) { byId('signed-out').hidden = false; throw new Error('signed out'); }
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      })
      .then(function (m) { apply(m); status('live', false); })
      .catch(function (e) { status('not updating: ' + e.message, true); })
      .then(function () { busy = false; });
  }
  byId('reload').addEventListener('click', function () { location.reload(); });
  setInterval(poll, 2000);
  document.addEventListener('visibilitychange', poll);
})();
`;
