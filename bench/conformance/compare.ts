import type { Verdict } from './oracle-output.js';

/**
 * Pure: one cell (module, kernel) of the conformance table, both sides side by side, and
 * whether they agree: same verdict and, when both built, the same module files (names with
 * their suffix: .ko vs .ko.xz counts) and the same install destinations below /lib/modules/<k>.
 */
export interface Side {
  /**
   * `refused`: the tool refused the module before any kernel (dkms add failed; kfarm exited 2,
   * bad input, without a report); `error`: the harness did not get a verdict at all
   */
  verdict: Verdict | 'refused' | 'error';
  files: string[];
  destinations: string[];
  /** reason (kfarm), exit code and last log lines (dkms): shown for a disagreement */
  detail: string;
}

export interface Cell {
  module: string;
  kernel: string;
  dkms: Side;
  kfarm: Side;
}

export interface Judged extends Cell {
  agree: boolean;
  why: string[];
}

const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);

/** Nothing built for the kernel: a refused module and a failed build are the same outcome there. */
const outcome = (v: Side['verdict']) => (v === 'refused' ? 'failed' : v);

export function judge(cell: Cell): Judged {
  const why: string[] = [];
  if (outcome(cell.dkms.verdict) !== outcome(cell.kfarm.verdict)) why.push(`verdict: dkms ${cell.dkms.verdict}, kfarm ${cell.kfarm.verdict}`);
  else if (cell.dkms.verdict === 'built') {
    if (!same(cell.dkms.files, cell.kfarm.files)) why.push(`files: ${diff(cell.dkms.files, cell.kfarm.files)}`);
    if (!same(cell.dkms.destinations, cell.kfarm.destinations)) why.push(`destinations: ${diff(cell.dkms.destinations, cell.kfarm.destinations)}`);
  } else if (cell.dkms.verdict === 'error') why.push('neither tool reached a verdict');
  return { ...cell, agree: why.length === 0, why };
}

function diff(dkms: readonly string[], kfarm: readonly string[]): string {
  const onlyDkms = dkms.filter((x) => !kfarm.includes(x));
  const onlyKfarm = kfarm.filter((x) => !dkms.includes(x));
  const parts = [onlyDkms.length ? `only dkms ${onlyDkms.join(' ')}` : '', onlyKfarm.length ? `only kfarm ${onlyKfarm.join(' ')}` : ''].filter(Boolean);
  return parts.join('; ') || 'differ';
}

/** Pure: `/lib/modules/<k>/updates/dkms/x.ko` (kfarm's report) → `updates/dkms/x.ko` (what the oracle lists). */
export function relativeDestination(destination: string, kernel: string): string {
  for (const prefix of [`/lib/modules/${kernel}/`, `/usr/lib/modules/${kernel}/`]) {
    if (destination.startsWith(prefix)) return destination.slice(prefix.length).replace(/^\/+/, '');
  }
  return destination;
}

export interface Agreement {
  agree: number;
  total: number;
  percent: number;
}

export function agreement(cells: readonly Judged[]): Agreement {
  const agree = cells.filter((c) => c.agree).length;
  return { agree, total: cells.length, percent: cells.length === 0 ? 0 : Math.round((1000 * agree) / cells.length) / 10 };
}
