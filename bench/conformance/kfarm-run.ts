import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { run } from '../../src/process/run.js';
import type { Side } from './compare.js';
import { kfarmSides } from './kfarm-report.js';

export interface KfarmRun {
  exitCode: number;
  /** per kernel; undefined when kfarm wrote no report (it refused the source, or broke) */
  sides: Map<string, Side> | undefined;
  /** the last lines kfarm printed on stderr, for a run without report */
  stderrTail: string;
}

/**
 * `kfarm build <dir> --kernels <list> --out <out>` through the compiled CLI, with the harness's
 * private state dir and queue (as test/helpers/kfarm-cli.ts isolatedEnv() does), then its
 * report.json. kfarm exits non-zero when a kernel failed: that is a verdict, not an error here.
 */
export async function kfarmBuild(sourceDir: string, kernels: readonly string[], outDir: string, env: Record<string, string>): Promise<KfarmRun> {
  const result = await run('node', [path.join(packageRoot, 'bin', 'kfarm.js'), 'build', sourceDir, '--kernels', kernels.join(','), '--out', outDir, '--table', 'summary'], {
    env,
    allowFailure: true,
    timeoutMs: 2 * 3600_000,
  });
  const report = await readFile(path.join(outDir, 'report.json'), 'utf8').catch(() => undefined);
  return {
    exitCode: result.exitCode,
    sides: report === undefined ? undefined : kfarmSides(report),
    stderrTail: result.stderr
      .split('\n')
      .filter((l) => l.trim())
      .slice(-3)
      .join(' / ')
      .slice(0, 300),
  };
}
