/**
 * Pure: what the live status of a long run says. No clock, no I/O: callers pass elapsed time.
 */

export interface ProgressCounts {
  /** finished (built, excluded or failed) */
  done: number;
  running: number;
  queued: number;
  /** of done: how many failed so far */
  failed: number;
  total: number;
  elapsedMs: number;
}

/**
 * The pace so far (ms per finished item) times what is left; undefined until something has
 * finished (no pace yet) or when nothing is left. Kernels of one run cost about the same, so a
 * plain average beats anything clever; it settles after the first few.
 */
export function estimateRemainingMs(done: number, total: number, elapsedMs: number): number | undefined {
  if (!(done > 0) || !(elapsedMs >= 0) || !Number.isFinite(elapsedMs)) return undefined;
  const left = total - done;
  if (!(left > 0)) return undefined;
  return Math.round((elapsedMs / done) * left);
}

/** Coarse on purpose: a status line redrawn every 100 ms must not flicker tenths of seconds. */
export function shortDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** `12/180 done · 2 running · 166 queued · 1 failed · 2 min 3 s elapsed · ~9 min 13 s left` */
export function progressLine(c: ProgressCounts): string {
  const left = estimateRemainingMs(c.done, c.total, c.elapsedMs);
  return [
    `${c.done}/${c.total} done`,
    `${c.running} running`,
    `${c.queued} queued`,
    `${c.failed} failed`,
    `${shortDuration(c.elapsedMs)} elapsed`,
    ...(left === undefined ? [] : [`~${shortDuration(left)} left`]),
  ].join(' · ');
}
