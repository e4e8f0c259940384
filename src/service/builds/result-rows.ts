import type { BuildReport } from '../../report/report.js';
import type { ResultRow } from '../farm-db.js';

/** Pure: the kernel's flavour, what follows its version (6.1.0-57-cloud-amd64 → cloud-amd64, 6.12.48+deb13-rt-arm64 → rt-arm64). */
export function flavourOf(kernel: string): string {
  return /^[0-9][0-9.]*(?:-[0-9]+)?(?:\+[A-Za-z0-9.~]+)?-([A-Za-z][A-Za-z0-9_-]*)$/.exec(kernel)?.[1] ?? '';
}

/** Pure: a build's report as the history rows the database keeps (one per module and kernel). */
export function resultRows(buildId: string, report: BuildReport, at: string): ResultRow[] {
  return report.kernels.map((k) => ({
    buildId,
    module: k.module ?? report.module,
    version: k.version ?? report.version,
    kernel: k.kernel,
    release: k.release,
    arch: k.arch,
    flavour: flavourOf(k.kernel),
    verdict: k.verdict,
    ...(k.reason ? { reason: k.reason } : {}),
    ...((k.firstError ?? k.message) ? { firstError: k.firstError ?? k.message } : {}),
    ...(k.load ? { load: k.load.verdict } : {}),
    at,
  }));
}
