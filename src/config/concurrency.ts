import os from 'node:os';

/** What one build needs, by default, when the machine decides how many run at once (its --memory limit is a ceiling, not a need). */
const TYPICAL_BUILD_BYTES = 1024 ** 3;

/**
 * Builds at once when `--concurrency` is not given: one more than the cores, as far as free
 * memory allows. A kbuild compile is partly serial (one .c per process, modpost, the link,
 * the container's start and the packing), so a build at a time per core leaves cores idle:
 * with the cores alone, a module's three kernels on two cores ran two then one (2 x a build);
 * with one more they share the cores (1.5 x a build). Measured: acpi-call on 3 kernels, 2
 * cores, paired runs: 3 at once took 0.85 x the time of 2 (bench/matrix.ts has the matrix).
 */
export function defaultConcurrency(cores = os.availableParallelism(), freeBytes = os.freemem()): number {
  const byMemory = Math.floor(freeBytes / TYPICAL_BUILD_BYTES);
  return Math.max(1, Math.min(Math.max(1, cores) + 1, byMemory));
}
