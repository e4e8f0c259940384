import type { KernelReport } from './report.js';

/**
 * Pure: a build's kernels grouped by distro release and arch, the way a matrix of 180 kernels
 * is read (`debian-12/amd64: 36 built, 0 excluded, 0 failed`).
 */

export interface ReportGroup {
  release: string;
  arch: string;
  built: number;
  excluded: number;
  failed: number;
  kernels: KernelReport[];
}

/** Groups in release order (debian-11 before debian-12, numerically), then arch; kernels keep the report's order. */
export function reportGroups(kernels: readonly KernelReport[]): ReportGroup[] {
  const groups = new Map<string, ReportGroup>();
  for (const k of kernels) {
    const key = `${k.release}\u0000${k.debianArch}`;
    let group = groups.get(key);
    if (!group) {
      group = { release: k.release, arch: k.debianArch, built: 0, excluded: 0, failed: 0, kernels: [] };
      groups.set(key, group);
    }
    group[k.verdict]++;
    group.kernels.push(k);
  }
  const order = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });
  return [...groups.values()].sort((a, b) => order(a.release, b.release) || order(a.arch, b.arch));
}

export function groupLine(g: ReportGroup): string {
  return `${g.release}/${g.arch}: ${g.built} built, ${g.excluded} excluded, ${g.failed} failed`;
}
