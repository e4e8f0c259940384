import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cellState, renderHtml } from '../../src/report/html.js';
import { htmlText, safeHref } from '../../src/report/html-text.js';
import { REPORT_CSS, REPORT_SCRIPT } from '../../src/report/html-assets.js';
import { HOSTILE, row, sampleReport } from '../fixtures/junit/sample-report.js';

/**
 * report.html shows strangers' text (first error lines, messages, warnings, even log paths of
 * a report read back from disk): none of it may become markup, a script or a link elsewhere.
 * The browser test (test/e2e/report-html.test.ts) checks what a person sees.
 */
const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

describe('report.html escaping', () => {
  it("strangers' text is shown as text: no markup, script or attribute break comes through", () => {
    const html = renderHtml(sampleReport());
    expect(html.match(/<script\b/g)?.length).toBe(1); // only kfarm's own, inline
    expect(html).not.toContain('<script>alert(1)');
    expect(html).not.toContain('</failure>');
    expect(html).toContain('x[31m]]&gt;&lt;/failure&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;amp;&quot;&#39;end');
    expect(html).not.toContain('\u202e');
    expect(html).toContain('dkms.conf: line 3: &lt;b&gt;syntax&lt;/b&gt; error');
    // eslint-disable-next-line no-control-regex -- characters XML cannot hold are what is checked for
    expect(html).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\uffff]/);
    expect(HOSTILE).toContain('\u0000'); // the fixture really is hostile
  });

  it('loads nothing: a Content-Security-Policy allows only its own inline style and script, by hash', () => {
    const html = renderHtml(sampleReport());
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1]?.replace(/&#39;/g, "'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain(`script-src ${hash(REPORT_SCRIPT)}`);
    expect(csp).toContain(`style-src ${hash(REPORT_CSS)}`);
    expect(html).toContain(`<script>${REPORT_SCRIPT}</script>`);
    expect(html).toContain(`<style>${REPORT_CSS}</style>`);
    expect(html).not.toMatch(/\bsrc=|https?:\/\/|url\(/);
  });

  it('links each log by its relative path, and only a plain relative path becomes a link', () => {
    const report = sampleReport();
    report.kernels = [
      row({ kernel: '6.1.0-57-amd64', verdict: 'failed', reason: 'make-failed', log: 'logs/6.1.0-57-amd64.log' }),
      row({ kernel: '6.1.0-56-amd64', verdict: 'failed', reason: 'make-failed', log: 'javascript:alert(1)' }),
      row({ kernel: '6.1.0-55-amd64', verdict: 'failed', reason: 'make-failed', log: '../../etc/passwd' }),
    ];
    const html = renderHtml(report);
    const hrefs = [...html.matchAll(/href="([^"]*)"/g)].map((m) => m[1]);
    expect(new Set(hrefs)).toEqual(new Set(['logs/6.1.0-57-amd64.log']));
    expect(html).toContain('build log: javascript:alert(1)');
    expect(safeHref('logs/hello-1.0/6.12.117+deb12-amd64.log')).toBe('logs/hello-1.0/6.12.117%2Bdeb12-amd64.log');
    for (const bad of ['/etc/passwd', 'logs/../../x', 'a//b', 'https://example.org/x', 'logs/a b', 'logs/"x', '']) expect(safeHref(bad), bad).toBeUndefined();
  });

  it('one cell per report row, each with its state as a colour class and a letter', () => {
    const report = sampleReport();
    const html = renderHtml(report);
    const cells = [...html.matchAll(/<td class="cell c-([a-z-]+)" data-verdict="([a-z-]+)"[^>]*><details><summary><b class="letter">([A-Z?]+)<\/b>/g)];
    expect(cells.length).toBe(report.kernels.length);
    expect(cells.map((c) => c[2])).toEqual(expect.arrayContaining(['loaded', 'load-failed', 'not-verified', 'failed', 'excluded', 'built']));
    const letterOf = Object.fromEntries(cells.map((c) => [c[2], c[3]]));
    expect(letterOf).toEqual({ loaded: 'L', 'load-failed': 'LF', 'not-verified': 'B?', failed: 'F', excluded: 'X', built: 'B' });
    for (const c of cells) expect(c[1]).toBe(c[2]);
    expect(cellState(row({ kernel: 'k', verdict: 'failed', load: { verdict: 'loaded' } }))).toBe('failed');
  });

  it('escapes every character that could end an attribute or open a tag', () => {
    expect(htmlText(`<a href='x' title="y">&\u0000`)).toBe('&lt;a href=&#39;x&#39; title=&quot;y&quot;&gt;&amp;');
  });
});
