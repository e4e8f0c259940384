/**
 * The order in which queued builds start: longest first. With the long builds last, a matrix
 * ends with one long compile on an otherwise idle machine (measured: the last 2.6 s of a 58 s
 * run on one of two cores); started first, they overlap with the short ones.
 */

/** BullMQ's priorities run from 1 (first) to 2^21 (last); 0, no priority, would run before all. */
const LAST = 2 ** 21;

/** The BullMQ priority of a build estimated at `units` translation units (src/source/compile-units.ts): more, sooner. */
export function jobPriority(units: number): number {
  const n = Number.isFinite(units) ? Math.max(1, Math.floor(units)) : 1;
  return Math.max(1, LAST - n);
}
