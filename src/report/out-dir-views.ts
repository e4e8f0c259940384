import os from 'node:os';
import { renderHtml } from './html.js';
import { renderJunit } from './junit.js';
import { readLogExcerpt } from './log-excerpt.js';
import type { BuildReport } from './report.js';

export interface ReportViews {
  'report.json': string;
  'junit.xml': string;
  'report.html': string;
}

/**
 * Every view of one report: report.json (the model), junit.xml for CI systems and report.html
 * for people, rendered together so each always agrees with report.json. The JUnit failures
 * carry their logs' last lines, read where `rootOf(rel)` says the log is now (this command's
 * staged copy, or the out dir's own).
 */
export async function renderViews(report: BuildReport, rootOf: (rel: string) => string): Promise<ReportViews> {
  const wanted = new Set<string>();
  for (const k of report.kernels) {
    if (k.verdict === 'failed') wanted.add(k.log);
    if (k.load?.verdict === 'load-failed' && k.load.log) wanted.add(k.load.log);
  }
  const excerpts = new Map<string, string>();
  for (const rel of wanted) {
    const text = await readLogExcerpt(rootOf(rel), rel);
    if (text) excerpts.set(rel, text);
  }
  return {
    'report.json': `${JSON.stringify(report, null, 2)}\n`,
    'junit.xml': renderJunit({ report, hostname: os.hostname(), excerpts }),
    'report.html': renderHtml(report),
  };
}
