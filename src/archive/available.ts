import { toUnameArch } from '../matrix/arch-names.js';
import type { DiscoveredKernel } from './discover.js';
import { newestFirst } from './discover.js';

export interface AvailableRow {
  kernel: string;
  release: string;
  /** Debian arch */
  arch: string;
  flavour: string;
  suite: string;
  headersVersion: string;
  held: boolean;
  fetchable: boolean;
  reason: string | undefined;
}

/** Pure: the archive's kernels against what the images hold (kernel + arch, either arch name), newest first. */
export function availableRows(kernels: readonly DiscoveredKernel[], held: ReadonlyArray<{ kernel: string; arch: string }>): AvailableRow[] {
  const heldKeys = new Set(held.map((h) => `${toUnameArch(h.arch)}/${h.kernel}`));
  return [...kernels].sort(newestFirst).map((k) => ({
    kernel: k.kernel,
    release: k.release,
    arch: k.arch,
    flavour: k.flavour,
    suite: k.suite,
    headersVersion: k.version,
    held: heldKeys.has(`${toUnameArch(k.arch)}/${k.kernel}`),
    fetchable: k.fetch.fetchable,
    reason: k.fetch.fetchable ? undefined : k.fetch.reason,
  }));
}

/** Pure: one line per (release, arch): kernels, held, unfetchable, and the count per flavour. */
export function availableSummary(rows: readonly AvailableRow[]): string[] {
  const groups = new Map<string, AvailableRow[]>();
  for (const r of rows) groups.set(`${r.release}/${r.arch}`, [...(groups.get(`${r.release}/${r.arch}`) ?? []), r]);
  return [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([group, list]) => {
      const flavours = new Map<string, number>();
      for (const r of list) flavours.set(r.flavour, (flavours.get(r.flavour) ?? 0) + 1);
      const perFlavour = [...flavours.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([f, n]) => `${f} ${n}`)
        .join(', ');
      return `${group}: ${list.length} kernels (${perFlavour}), ${list.filter((r) => r.held).length} held, ${list.filter((r) => !r.fetchable).length} not fetchable`;
    });
}
