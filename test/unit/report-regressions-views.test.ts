import { describe, expect, it } from 'vitest';
import { regressionLines } from '../../src/cli/actions/build-farm.js';
import { renderHtml } from '../../src/report/html.js';
import { parseReport } from '../../src/report/read-report.js';
import type { BuildReport, RegressionReport } from '../../src/report/report.js';
import { HOSTILE, sampleReport } from '../fixtures/junit/sample-report.js';

/**
 * A farm build's report carries its regression windows (report.json `regressions`): they read
 * back through the schema-checked reader, report.html shows them above the matrix (open ones
 * first, strangers' text as text) and `kfarm build --farm` prints them after its table.
 */

const broken: RegressionReport = {
  module: 'hello',
  version: '1.0.0',
  release: 'debian-12',
  arch: 'x86_64',
  flavour: 'amd64',
  line: '6.1',
  check: 'build',
  state: 'broken',
  sentence: 'builds on 6.1.0-56-amd64, fails since 6.1.0-57-amd64',
  lastGood: '6.1.0-56-amd64',
  firstBad: '6.1.0-57-amd64',
  firstError: 'hello.c:3:1: error: struct changed',
  reason: 'make-failed',
  buildId: 'b-20261101000001-abcdef',
  since: '2026-11-01T01:00:00.000Z',
  changelog: {
    lastGood: { kernel: '6.1.0-56-amd64', version: '6.1.150-1' },
    firstBad: { kernel: '6.1.0-57-amd64', version: '6.1.151-1' },
    source: { image: 'kfarm/debian-12:6.1.0-57-amd64', path: '/usr/share/doc/linux-headers-6.1.0-57-amd64/changelog.Debian.gz' },
    entries: [
      {
        package: 'linux',
        version: '6.1.151-1',
        distribution: 'bookworm-security',
        urgency: 'high',
        body: ['  * New upstream stable update', `    - ${HOSTILE}`],
        maintainer: 'Salvatore Bonaccorso <carnil@debian.org>',
        date: 'Thu, 26 Nov 2026 18:12:56 +0100',
      },
    ],
    omittedEntries: 0,
    omittedLines: 3,
    complete: true,
  },
};
const fixed: RegressionReport = {
  ...broken,
  flavour: 'cloud-amd64',
  state: 'fixed',
  sentence: 'builds again since 6.1.0-58-cloud-amd64 (failed on 6.1.0-57-cloud-amd64)',
  lastGood: '6.1.0-58-cloud-amd64',
  firstBad: '6.1.0-57-cloud-amd64',
  lastBad: '6.1.0-57-cloud-amd64',
  fixedIn: '6.1.0-58-cloud-amd64',
  firstError: `${HOSTILE}\nsecond line`,
  changelog: undefined,
};
delete fixed.changelog;

const withRegressions = (regressions: RegressionReport[]): BuildReport => ({ ...sampleReport(), regressions });

describe('report.json regressions', () => {
  it('read back through the reader', () => {
    const report = withRegressions([broken, fixed]);
    expect(parseReport(JSON.stringify(report), 'report.json').regressions).toEqual([broken, fixed]);
  });

  it.each([
    ['a state kfarm does not give', { ...broken, state: 'ok' }, 'regressions.0.state'],
    ['a kernel name that is none', { ...broken, firstBad: '../../etc' }, 'regressions.0.firstBad'],
    ['a changelog without its entries', { ...broken, changelog: { ...broken.changelog, entries: 'x' } }, 'regressions.0.changelog.entries'],
  ])('refuses %s', (_what, entry, where) => {
    expect(() => parseReport(JSON.stringify({ ...sampleReport(), regressions: [entry] }), 'report.json')).toThrow(`report.json is not a kfarm report: ${where}`);
  });
});

describe('report.html regressions', () => {
  it('a Regressions section above the matrix, open ones first, with the sentence, the first error and the changelog', () => {
    const html = renderHtml(withRegressions([fixed, broken]));
    const section = html.indexOf('<section class="regressions"');
    expect(section).toBeGreaterThan(html.indexOf('</header>'));
    expect(section).toBeLessThan(html.indexOf('<table class="matrix"'));
    expect(html).toContain('<h2>Regressions (1 open)</h2>');
    const states = [...html.matchAll(/<li class="regression r-([a-z-]+)" data-state="([a-z-]+)"/g)].map((m) => m[2]);
    expect(states).toEqual(['broken', 'fixed']);
    expect(html).toContain('<span class="sentence">builds on 6.1.0-56-amd64, fails since 6.1.0-57-amd64</span>');
    expect(html).toContain('hello 1.0.0 on debian-12 / amd64, amd64 6.1 (build)');
    expect(html).toContain('<div class="first-error">hello.c:3:1: error: struct changed</div>');
    expect(html).toContain('Debian changelog between 6.1.150-1 and 6.1.151-1: 1 entry');
    expect(html).toContain('linux (6.1.151-1) bookworm-security; urgency=high');
    expect(html).toContain('0 more entries and 3 lines not shown');
    expect(html).toContain('-- Salvatore Bonaccorso &lt;carnil@debian.org&gt;  Thu, 26 Nov 2026 18:12:56 +0100');
  });

  it("strangers' text in a first error or a changelog stays text", () => {
    const html = renderHtml(withRegressions([broken, fixed]));
    expect(html.match(/<script\b/g)?.length).toBe(1);
    expect(html).not.toContain('<script>alert(1)');
    const section = html.slice(html.indexOf('<section class="regressions"'), html.indexOf('</section>') + 1);
    // the changelog's line and the fixed window's first error, as text
    expect(section.split('&lt;script&gt;alert(1)&lt;/script&gt;').length - 1).toBe(2);
    expect(section).not.toMatch(/<script|<\/failure>/);
    expect(html).not.toContain('\u202e');
  });

  it('a report without regressions (a local build) has no such section', () => {
    expect(renderHtml(sampleReport())).not.toContain('class="regressions"');
    expect(renderHtml(withRegressions([]))).not.toContain('class="regressions"');
  });
});

describe('kfarm build --farm: the regressions after the table', () => {
  it("one line per window with its sentence, and the first error's first line under it", () => {
    expect(regressionLines(withRegressions([broken, fixed]))).toEqual([
      'regression: hello 1.0.0 debian-12/amd64 amd64 6.1 (build): builds on 6.1.0-56-amd64, fails since 6.1.0-57-amd64',
      '  hello.c:3:1: error: struct changed',
      'fixed: hello 1.0.0 debian-12/amd64 cloud-amd64 6.1 (build): builds again since 6.1.0-58-cloud-amd64 (failed on 6.1.0-57-cloud-amd64)',
      expect.stringMatching(/^ {2}x\]\]><\/failure><script>alert\(1\)<\/script>&amp;"'.*end$/),
    ]);
    // eslint-disable-next-line no-control-regex -- the control characters are what is checked for
    expect(regressionLines(withRegressions([broken, fixed])).join('\n')).not.toMatch(/\u001b|\u0000|\u202e/);
    expect(regressionLines(sampleReport())).toEqual([]);
  });
});
