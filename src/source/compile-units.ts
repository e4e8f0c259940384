/**
 * How long a source's builds take, as far as the source alone tells, for ordering the queue
 * (src/queue/job-priority.ts). A kbuild compile costs about the same per translation unit,
 * whatever its size, since the kernel headers each unit parses dominate (lime-forensics'
 * 5 files and acpi-call's 1 take 7.4 s and 3.9 s for three kernels); so: the .c and .S files.
 */
export function compileUnits(paths: Iterable<string>): number {
  let units = 0;
  for (const p of paths) if (/\.(c|S)$/.test(p)) units++;
  return Math.max(1, units);
}
