/** Pure helpers the benchmarks share: medians, ratios against a target, formatting. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** "met (0.93x <= 1.10x)" or "missed by 12% (1.23x > 1.10x)" */
export function targetLine(ratio: number, limit: number): string {
  if (!Number.isFinite(ratio)) return 'not measured';
  return ratio <= limit ? `met (${ratio.toFixed(2)}x <= ${limit.toFixed(2)}x)` : `missed by ${((ratio / limit - 1) * 100).toFixed(0)}% (${ratio.toFixed(2)}x > ${limit.toFixed(2)}x)`;
}

/** `--name value` from argv, or the fallback */
export function flag(args: readonly string[], name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
}

export const has = (args: readonly string[], name: string) => args.includes(name);

/** `real 0m1.234s`-style bash `times` line "0m1.50s 0m0.25s" -> seconds user + sys */
export function parseTimesLine(line: string): number | undefined {
  const parts = [...line.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return parts.length === 2 ? (parts[0] as number) + (parts[1] as number) : undefined;
}
