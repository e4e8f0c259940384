import { compareKernels } from '../../matrix/kernel-target.js';
import { debianArchOf } from '../../report/release-arch.js';
import type { KernelSeenRow, ModuleRow, ResultRow } from '../farm-db.js';
import {
  buildLinks,
  DASHBOARD_SCHEMA_VERSION,
  type DashboardCell,
  type DashboardKernel,
  type DashboardLive,
  type DashboardModel,
  type DashboardRegression,
  type DashboardTimeline,
} from './dashboard-model.js';

/**
 * Pure: the dashboard's model from what the farm's database holds. The server reads the rows
 * (modules.list, kernels.list, results.history of each module), the regression view's open
 * regressions and the queue's live state, and hands them here; nothing here does I/O.
 */

export interface DashboardInput {
  generatedAt: string;
  modules: readonly ModuleRow[];
  kernels: readonly KernelSeenRow[];
  /** every result of the registered modules, any order (results.history of each) */
  results: readonly ResultRow[];
  regressions: readonly DashboardRegression[];
  live: DashboardLive;
}

export function buildDashboardModel(input: DashboardInput): DashboardModel {
  const cells = latestCells(input.results);
  const kernels = kernelColumns(input.kernels, input.results);
  const byPair = new Map(cells.map((c) => [pairKey(c.module, c.kernel), c]));
  const moduleNames = [...new Set([...input.modules.map((m) => m.name), ...cells.map((c) => c.module)])];
  const inTimeOrder = [...kernels].sort((a, b) => a.firstSeen.localeCompare(b.firstSeen) || compareKernels(a.kernel, b.kernel));
  const timelines: DashboardTimeline[] = moduleNames.map((module) => ({
    module,
    entries: inTimeOrder.map((k) => {
      const cell = byPair.get(pairKey(module, k.kernel));
      return {
        kernel: k.kernel,
        ...(cell ? { verdict: cell.verdict } : {}),
        ...(cell?.load ? { load: cell.load } : {}),
      };
    }),
  }));
  return {
    schemaVersion: DASHBOARD_SCHEMA_VERSION,
    generatedAt: input.generatedAt,
    modules: input.modules.map((m) => ({ name: m.name, version: m.version, settings: m.settings })),
    kernels,
    cells,
    timelines,
    regressions: [...input.regressions],
    live: input.live,
  };
}

/** The newest result per (module, kernel): by `at`, the later row of the input winning a tie (history is oldest first). */
export function latestCells(results: readonly ResultRow[]): DashboardCell[] {
  const latest = new Map<string, ResultRow>();
  for (const r of results) {
    const key = pairKey(r.module, r.kernel);
    const seen = latest.get(key);
    if (!seen || seen.at <= r.at) latest.set(key, r);
  }
  return [...latest.values()].map((r) => ({
    module: r.module,
    version: r.version,
    kernel: r.kernel,
    verdict: r.verdict,
    ...(r.reason !== undefined ? { reason: r.reason } : {}),
    ...(r.firstError !== undefined ? { firstError: r.firstError } : {}),
    ...(r.load !== undefined ? { load: r.load } : {}),
    buildId: r.buildId,
    at: r.at,
    links: buildLinks(r.buildId, r.module, r.kernel, r.load !== undefined && r.load !== 'not-verified'),
  }));
}

/**
 * The archive's kernels, plus any kernel a result names that the archive never listed (built
 * from an image synced by hand): those take their first result's time as firstSeen, so every
 * cell has its column.
 */
function kernelColumns(seen: readonly KernelSeenRow[], results: readonly ResultRow[]): DashboardKernel[] {
  const kernels = new Map<string, DashboardKernel>();
  for (const k of seen)
    kernels.set(k.kernel, {
      kernel: k.kernel,
      release: k.release,
      arch: k.arch,
      flavour: k.flavour,
      firstSeen: k.firstSeen,
      ...(k.goneSince !== undefined ? { goneSince: k.goneSince } : {}),
      ...(k.prunedAt !== undefined ? { prunedAt: k.prunedAt } : {}),
    });
  const listed = new Set(seen.map((k) => k.kernel));
  for (const r of results) {
    const known = kernels.get(r.kernel);
    if (!known) kernels.set(r.kernel, { kernel: r.kernel, release: r.release, arch: debianArchOf(r.arch), flavour: r.flavour, firstSeen: r.at });
    else if (!listed.has(r.kernel) && r.at < known.firstSeen) known.firstSeen = r.at;
  }
  return [...kernels.values()];
}

const pairKey = (module: string, kernel: string) => `${module}\u0000${kernel}`;
