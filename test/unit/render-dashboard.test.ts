import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DASHBOARD_CSP, dashboardShape, renderDashboard } from '../../src/service/dashboard/render-dashboard.js';
import { LOGIN_CSP, renderLogin } from '../../src/service/dashboard/render-login.js';
import { safeApiPath, type DashboardModel } from '../../src/service/dashboard/dashboard-model.js';
import { fixtureModel, HOSTILE, K56, K57 } from '../fixtures/dashboard/dashboard-fixture.js';

const sha = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
const inline = (html: string, tag: 'script' | 'style') => [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => m[1] ?? '');

/** Every tag the page holds, by name: markup that slipped through escaping would add one. */
const tags = (html: string) => [...html.matchAll(/<([a-zA-Z][a-zA-Z0-9-]*)[\s>]/g)].map((m) => (m[1] ?? '').toLowerCase());

describe('renderDashboard', () => {
  it('escapes markup in module names, errors, changelogs and host names: the page holds no tag that the model wrote', () => {
    const model = fixtureModel();
    model.modules.push({ name: '</script><script>alert(1)</script>', version: '"><svg onload=alert(1)>', settings: { formats: [] } });
    model.live.builds.push({ id: `b-"'><img src=x>`, module: HOSTILE, done: 1, total: 2 });
    const html = renderDashboard(model);
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<svg');
    expect(html).not.toContain('onerror=alert(1)>');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('fails.c:3:2: error: &lt;script&gt;alert(1)&lt;/script&gt; implicit declaration');
    // the one inline script and the one JSON data block, nothing a name could open
    expect(html.match(/<script[\s>]/g)).toHaveLength(2);
    expect(html.match(/<\/script>/g)).toHaveLength(2);
    expect(new Set(tags(html))).not.toContain('img');
    // the shape block's JSON reads back to the names it was made of
    const block = /<script type="application\/json" id="shape">([^<]*)<\/script>/.exec(html)?.[1];
    expect(JSON.parse(block ?? 'null')).toEqual(dashboardShape(model));
    expect(dashboardShape(model).modules).toContain('</script><script>alert(1)</script>');
  });

  it('puts open regressions first: their section before the live one and the matrix, and their modules at the top of the matrix', () => {
    const html = renderDashboard(fixtureModel());
    const at = (id: string) => html.indexOf(`<section id="${id}">`);
    expect(at('regressions')).toBeGreaterThan(0);
    expect(at('regressions')).toBeLessThan(at('live'));
    expect(at('live')).toBeLessThan(at('latest'));
    expect(at('latest')).toBeLessThan(at('timelines'));
    const rows = [...html.matchAll(/<tr data-module="([^"]*)">/g)].map((m) => m[1]);
    expect(rows).toEqual(['fails', '&lt;img src=x onerror=alert(1)&gt;', 'hello']); // fails regressed; then by name
    expect(html).toContain(`<p class="sentence">builds on ${K56}, fails since ${K57}</p>`);
  });

  it('says when nothing regressed', () => {
    const model = fixtureModel();
    model.regressions = [];
    expect(renderDashboard(model)).toContain('<h2>Open regressions (0)</h2>\n<p class="meta">None:');
  });

  it('loads nothing from anywhere: no src or href to another origin, no url() or @import in the style', () => {
    const html = renderDashboard(fixtureModel(), { base: '/kfarm' });
    const refs = [...html.matchAll(/\b(?:src|href|action)\s*=\s*"([^"]*)"/gi)].map((m) => m[1] ?? '');
    expect(refs.length).toBeGreaterThan(5);
    for (const ref of refs) expect(ref, ref).toMatch(/^\/kfarm\/(?:api\/v1\/|login$)/);
    expect(html).not.toMatch(/\b(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i);
    expect(html).not.toMatch(/url\(|@import|@font-face/i);
    expect(html).not.toMatch(/<(?:link|iframe|object|embed|img)\b/i);
  });

  it('makes no link of a model path outside /api/v1 (javascript:, another origin, a dot-dot segment, encoded or not)', () => {
    const model = fixtureModel();
    const cell = model.cells.find((c) => c.module === 'hello' && c.kernel === K56);
    if (!cell) throw new Error('fixture changed');
    cell.links = { report: 'javascript:alert(1)', log: '//evil.example/x.log', loadLog: '/api/v1/builds/%2E%2e/secret' };
    const html = renderDashboard(model);
    expect(html).not.toContain('javascript:');
    expect(html).not.toContain('evil.example');
    expect(html).not.toMatch(/%2e%2e/i);
    for (const bad of ['/api/v1/../x', '/api/v1/./x', '/api/v1/a/..', '/api/v2/x', '/api/v1', 'http://h/api/v1/x', '/api/v1/a b', '/api/v1/a"b', '/api/v1/.%2E/x'])
      expect(safeApiPath(bad), bad).toBeUndefined();
    for (const good of [
      '/api/v1/builds/b-1/report',
      '/api/v1/builds/b-1/artifacts/logs/6.12.57%2Bdeb13-amd64.log',
      '/api/v1/builds/b-1/artifacts/logs/load/hello/6.1.0-56-amd64.log',
    ])
      expect(safeApiPath(good), good).toBe(good);
  });

  it("CSP allows exactly the page's inline script and style by hash, and fetches only from its own origin", () => {
    const html = renderDashboard(fixtureModel());
    const scripts = inline(html, 'script');
    const styles = inline(html, 'style');
    expect(scripts).toHaveLength(1);
    expect(styles).toHaveLength(1);
    expect(DASHBOARD_CSP).toContain(`script-src ${sha(scripts[0] ?? '')};`);
    expect(DASHBOARD_CSP).toContain(`style-src ${sha(styles[0] ?? '')};`);
    expect(DASHBOARD_CSP).toMatch(/^default-src 'none'; /);
    expect(DASHBOARD_CSP).toContain("connect-src 'self'");
    expect(DASHBOARD_CSP).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
    // no style attribute (a hash-only style-src would block it)
    expect(html).not.toMatch(/\sstyle=/i);
    // the same page for another model: the hashes do not depend on the data
    const other = fixtureModel();
    other.modules[0]!.name = 'other';
    expect(inline(renderDashboard(other), 'script')).toEqual(scripts);
  });

  it('refuses a base that is not a plain path', () => {
    expect(() => renderDashboard(fixtureModel(), { base: '"><script>' })).toThrow(/not a plain path/);
    expect(() => renderDashboard(fixtureModel(), { base: 'https://evil.example' })).toThrow(/not a plain path/);
    expect(renderDashboard(fixtureModel(), { base: '/kfarm/' })).toContain('data-base="/kfarm"');
  });

  it('renders an empty farm', () => {
    const empty: DashboardModel = {
      schemaVersion: 1,
      generatedAt: '2026-12-08T00:00:00Z',
      modules: [],
      kernels: [],
      cells: [],
      timelines: [],
      regressions: [],
      live: { queue: { waiting: 0, active: 0, delayed: 0, failed: 0 }, workers: [], builds: [] },
    };
    const html = renderDashboard(empty);
    expect(html).toContain('0 modules &middot; 0 kernels');
    expect(html).toContain('<p class="meta" id="builds-none">No build running.</p>');
  });
});

describe('renderLogin', () => {
  it('posts the token to <base>/login, escapes the error, runs no script, and its CSP allows its style by hash', () => {
    const html = renderLogin({ base: '/kfarm', error: `unknown token ${HOSTILE}` });
    expect(html).toContain('<form method="post" action="/kfarm/login">');
    expect(html).toContain('name="token" type="password"');
    expect(html).toContain('unknown token &lt;img src=x onerror=alert(1)&gt;');
    expect(html).not.toContain('<img');
    expect(html).not.toMatch(/<script/i);
    expect(LOGIN_CSP).toContain(`style-src ${sha(inline(html, 'style')[0] ?? '')}`);
    expect(LOGIN_CSP).toContain("form-action 'self'");
    expect(renderLogin()).toContain('action="/login"');
  });
});
