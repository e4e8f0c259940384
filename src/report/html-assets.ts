/**
 * The CSS and script report.html carries inline (its Content-Security-Policy allows these two
 * by hash and nothing else). The script only shows and hides what the page already holds: it
 * reads data-* attributes and never builds markup from text.
 */

/** the verdict colours and cell text report.html and the dashboard share (one look for one verdict) */
export const VERDICT_CSS = `.facts { color: #444; }
.letter { font-family: ui-monospace, monospace; }
a.log { display: inline-block; margin-right: .5rem; }
.c-built { background: #d7f0d8; }
.c-loaded { background: #9fd8a3; }
.c-not-verified { background: #e9f5e0; }
.c-load-failed { background: #ffd29c; }
.c-failed { background: #f7b7b2; }
.c-excluded { background: #e4e4e4; }`;

export const REPORT_CSS = `
:root { font: 14px/1.4 system-ui, sans-serif; color: #1b1b1b; background: #fff; }
body { margin: 1rem 1.5rem; }
h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
.meta { color: #555; margin: 0 0 .5rem; }
[hidden] { display: none !important; }
.summary, .legend { list-style: none; padding: 0; margin: .5rem 0; display: flex; flex-wrap: wrap; gap: .4rem; }
.summary li, .legend li { padding: .15rem .5rem; border-radius: 4px; border: 1px solid #0002; }
.filters { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; margin: .75rem 0; }
.filters select { font: inherit; }
.matrix-wrap { overflow-x: auto; }
table.matrix { border-collapse: collapse; }
.matrix th, .matrix td { border: 1px solid #ccc; padding: 0; text-align: center; vertical-align: top; }
.matrix th.group { background: #eef; padding: .2rem .4rem; white-space: nowrap; }
.matrix th.kernel { font-weight: normal; font-size: .8rem; padding: .3rem .2rem; white-space: nowrap; vertical-align: bottom; }
.matrix th.kernel span { writing-mode: vertical-rl; transform: rotate(180deg); }
.matrix th.module, .matrix th.module-h { text-align: left; padding: .2rem .5rem; white-space: nowrap; }
.matrix td.none { color: #999; padding: .3rem; }
.matrix td.cell summary { cursor: pointer; list-style: none; padding: .3rem .5rem; }
.matrix td.cell summary::-webkit-details-marker { display: none; }
.matrix td.dim { background: #fafafa !important; }
.matrix td.dim > * { visibility: hidden; }
.pop { text-align: left; padding: .3rem .5rem; max-width: 28rem; font-size: .8rem; background: #fff; border-top: 1px solid #0002; }
.first-error, .problems code { font-family: ui-monospace, monospace; white-space: pre-wrap; word-break: break-word; color: #8a1010; }
${VERDICT_CSS}
.problems li { margin: .3rem 0; padding: .2rem .4rem; list-style: none; }
.problems { padding: 0; }
.regressions ul { padding: 0; }
.regressions li.regression { list-style: none; margin: .4rem 0; padding: .3rem .6rem; border-left: 4px solid #999; background: #f6f6f6; }
.regressions li.r-broken { border-color: #c0392b; background: #fdecea; }
.regressions li.r-never-built { border-color: #e67e22; background: #fff3e6; }
.regressions li.r-fixed { border-color: #2e8b57; background: #eaf6ee; }
.regressions .r-state { text-transform: uppercase; font-size: .75rem; letter-spacing: .04em; }
.changelog summary { cursor: pointer; color: #333; }
.changelog .entry { margin: .4rem 0 .4rem 1rem; }
.changelog .entry-head { font-family: ui-monospace, monospace; font-weight: bold; }
.changelog pre { white-space: pre-wrap; word-break: break-word; font-size: .8rem; margin: .2rem 0; max-height: 24rem; overflow: auto; }
.changelog .note { color: #555; font-style: italic; margin: .3rem 0; }
`;

export const REPORT_SCRIPT = `
(function () {
  'use strict';
  var byId = function (id) { return document.getElementById(id); };
  var release = byId('f-release'), arch = byId('f-arch'), verdict = byId('f-verdict'), shown = byId('shown');
  var table = byId('matrix');
  var total = table.querySelectorAll('td[data-verdict]').length;
  function apply() {
    var r = release.value, a = arch.value, v = verdict.value;
    var inScope = function (el) {
      return (!r || el.getAttribute('data-release') === r) && (!a || el.getAttribute('data-arch') === a);
    };
    var used = {}, n = 0;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var any = false;
      Array.prototype.forEach.call(row.querySelectorAll('td'), function (cell) {
        var state = cell.getAttribute('data-verdict');
        var scope = inScope(cell);
        var match = scope && state !== null && (!v || state === v);
        cell.classList.toggle('dim', scope && !match);
        if (match) { any = true; n++; used[cell.getAttribute('data-col')] = true; }
      });
      row.hidden = !any && Boolean(r || a || v);
    });
    var hiddenCols = {};
    Array.prototype.forEach.call(table.querySelectorAll('th.kernel'), function (th) {
      var col = th.getAttribute('data-col');
      th.hidden = !(inScope(th) && (!v || used[col]));
      if (th.hidden) hiddenCols[col] = true;
    });
    Array.prototype.forEach.call(table.querySelectorAll('tbody td'), function (td) {
      td.hidden = Boolean(hiddenCols[td.getAttribute('data-col')]);
    });
    Array.prototype.forEach.call(table.querySelectorAll('th.group'), function (g) {
      var span = 0;
      Array.prototype.forEach.call(table.querySelectorAll('th.kernel'), function (th) {
        if (!th.hidden && th.getAttribute('data-release') === g.getAttribute('data-release') && th.getAttribute('data-arch') === g.getAttribute('data-arch')) span++;
      });
      g.hidden = span === 0;
      if (span > 0) g.colSpan = span;
    });
    shown.textContent = n + ' of ' + total + ' results shown';
  }
  [release, arch, verdict].forEach(function (s) { s.addEventListener('change', apply); });
  byId('filters').addEventListener('submit', function (e) { e.preventDefault(); });
})();
`;
