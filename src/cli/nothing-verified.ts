import type { KernelReport } from '../report/report.js';

/**
 * A load check that booted nothing proves nothing: a CI job gating on the exit status must not
 * pass when every row is `not-verified` (no kernel image, a guest that never booted, nothing
 * built). `kfarm verify` and `--verify load` then exit 1 unless --allow-unverified.
 */
export function nothingVerified(rows: readonly KernelReport[]): boolean {
  return !rows.some((k) => k.load?.verdict === 'loaded' || k.load?.verdict === 'load-failed');
}

/** One line saying why nothing was verified: the reasons, counted. */
export function nothingVerifiedText(rows: readonly KernelReport[]): string {
  const counts = new Map<string, number>();
  for (const k of rows) {
    const why = k.load?.reason ?? k.load?.verdict ?? 'not checked';
    counts.set(why, (counts.get(why) ?? 0) + 1);
  }
  const reasons = [...counts].map(([why, n]) => `${n} ${why}`).join(', ');
  return `no kernel was verified (${rows.length} row(s) not-verified: ${reasons}): exit 1. Pass --allow-unverified to accept a run that loaded nothing.`;
}
