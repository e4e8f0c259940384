/**
 * Pure: the faults a chaos run injects and when (issue 26 §1), from a seed alone, so that a
 * failing run is replayed by giving its seed again. One fault every `minGapMs`..`maxGapMs`
 * (20-40 s for the full run, shorter in CI), each kind drawn with equal weight; a disk fill is
 * followed by its free a few seconds later, so the farm meets a full disk and then recovers.
 */

export const FAULT_KINDS = ['kill-worker', 'restart-redis', 'restart-dockerd', 'kill-coordinator', 'fill-disk'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number] | 'free-disk';

export interface ScheduledFault {
  /** ms after the chaos run started */
  atMs: number;
  kind: FaultKind;
}

export interface ScheduleRequest {
  seed: number;
  /** no fault is scheduled at or after this (the run's expected length) */
  durationMs: number;
  minGapMs: number;
  maxGapMs: number;
  /** the kinds this run may inject (default every one) */
  kinds?: readonly (typeof FAULT_KINDS)[number][];
  /** how long a filled disk stays full (default 5-10 s) */
  fullForMs?: readonly [number, number];
}

/** mulberry32: a small, well-mixed 32-bit generator; the same seed gives the same sequence on every Node */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function chaosSchedule(request: ScheduleRequest): ScheduledFault[] {
  const { minGapMs, maxGapMs, durationMs } = request;
  if (!(minGapMs > 0) || maxGapMs < minGapMs) throw new Error(`chaos gaps must satisfy 0 < min <= max (got ${minGapMs}..${maxGapMs})`);
  const kinds = request.kinds ?? FAULT_KINDS;
  if (kinds.length === 0) throw new Error('a chaos run needs at least one fault kind');
  const [fullMin, fullMax] = request.fullForMs ?? [5_000, 10_000];
  const random = seededRandom(request.seed);
  const between = (lo: number, hi: number) => Math.round(lo + random() * (hi - lo));
  const faults: ScheduledFault[] = [];
  for (let at = between(minGapMs, maxGapMs); at < durationMs; at += between(minGapMs, maxGapMs)) {
    const kind = kinds[Math.min(kinds.length - 1, Math.floor(random() * kinds.length))] ?? kinds[0]!;
    faults.push({ atMs: at, kind });
    if (kind === 'fill-disk') faults.push({ atMs: at + between(fullMin, fullMax), kind: 'free-disk' });
  }
  return faults.sort((a, b) => a.atMs - b.atMs);
}

/** Pure: the faults by kind, for the run's summary line ("kill-worker 3, restart-redis 2, ..."). */
export function countFaults(faults: readonly Pick<ScheduledFault, 'kind'>[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const f of faults) counts[f.kind] = (counts[f.kind] ?? 0) + 1;
  return counts;
}
