import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KfarmError } from '../errors/kfarm-error.js';
import { writeAtomic } from '../util/write-atomic.js';
import { makeDirs } from '../util/make-dir.js';
import { renderHtml } from './html.js';
import { renderJunit } from './junit.js';
import { readLogExcerpt } from './log-excerpt.js';
import type { BuildReport } from './report.js';

export interface WriteReportsOptions {
  /** `--junit <file>`: the JUnit XML also here (the out dir always has junit.xml); default: none */
  junit?: string;
}

/**
 * Every view of one report, written to the out dir: report.json (the model), junit.xml for CI
 * systems and report.html for people. `kfarm build` and `kfarm verify` both end here, so each
 * view always agrees with report.json.
 */
export async function writeReports(outDir: string, report: BuildReport, options: WriteReportsOptions = {}): Promise<void> {
  // each through a temporary name: a full disk leaves the earlier file whole, never one cut short (exit 3 naming it)
  await writeAtomic(path.join(outDir, 'report.json'), Buffer.from(`${JSON.stringify(report, null, 2)}\n`));
  const junit = renderJunit({ report, hostname: os.hostname(), excerpts: await failureExcerpts(outDir, report) });
  await writeAtomic(path.join(outDir, 'junit.xml'), Buffer.from(junit));
  await writeAtomic(path.join(outDir, 'report.html'), Buffer.from(renderHtml(report)));
  if (options.junit) {
    const file = path.resolve(options.junit);
    try {
      await makeDirs(path.dirname(file)); // not mkdir's recursive: it spins forever below /proc
      await writeFile(file, junit);
    } catch (err) {
      throw new KfarmError('BAD_OPTION', `cannot write the JUnit report to ${file}: ${(err as Error).message}`, {
        context: { file },
        hint: 'Give --junit a file path in a directory you can write to; the out dir has junit.xml either way.',
        cause: err,
      });
    }
  }
}

/** The log tails the JUnit failures carry: only failed builds' and failed loads' logs are read. */
async function failureExcerpts(outDir: string, report: BuildReport): Promise<Map<string, string>> {
  const wanted = new Set<string>();
  for (const k of report.kernels) {
    if (k.verdict === 'failed') wanted.add(k.log);
    if (k.load?.verdict === 'load-failed' && k.load.log) wanted.add(k.load.log);
  }
  const excerpts = new Map<string, string>();
  for (const rel of wanted) {
    const text = await readLogExcerpt(outDir, rel);
    if (text) excerpts.set(rel, text);
  }
  return excerpts;
}
