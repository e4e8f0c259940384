import type { BuildReport, ModuleEntry } from '../report/report.js';

/**
 * One report for a run of several sources (`kfarm build <src>...`): every (module, kernel) row,
 * each naming its module, summed counts, and `modules` listing each source with its own counts
 * and full tarball. The top-level module, version, source and full tarball stay the first
 * module's, so that a reader of single-module reports keeps working. Pure.
 */
export function combineReports(reports: readonly BuildReport[], when: { startedAt: Date; finishedAt: Date }): BuildReport {
  const first = reports[0];
  if (!first) throw new Error('combineReports: no report'); // a bug: a run has at least one source
  const modules: ModuleEntry[] = reports.map((r) => ({
    name: r.module,
    version: r.version,
    source: r.source,
    summary: r.summary,
    ...(r.fullTarball ? { fullTarball: r.fullTarball } : {}),
  }));
  const sum = (k: keyof BuildReport['summary']) => reports.reduce((n, r) => n + r.summary[k], 0);
  return {
    ...first,
    startedAt: when.startedAt.toISOString(),
    finishedAt: when.finishedAt.toISOString(),
    durationMs: when.finishedAt.getTime() - when.startedAt.getTime(),
    summary: { built: sum('built'), excluded: sum('excluded'), failed: sum('failed') },
    kernels: reports.flatMap((r) => r.kernels.map((k) => ({ module: r.module, version: r.version, ...k }))),
    warnings: [...new Set(reports.flatMap((r) => (reports.length > 1 ? r.warnings.map((w) => `${r.module}: ${w}`) : r.warnings)))],
    modules,
  };
}
