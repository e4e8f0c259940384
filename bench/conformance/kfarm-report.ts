import { z } from 'zod';
import { relativeDestination, type Side } from './compare.js';

/**
 * Pure: kfarm's report.json → one side per kernel. Only the fields the comparison reads are
 * checked; a report that does not have them is not a report (undefined).
 */
const Report = z.object({
  kernels: z.array(
    z.object({
      kernel: z.string(),
      verdict: z.enum(['built', 'excluded', 'failed']),
      reason: z.string().optional(),
      message: z.string().optional(),
      modules: z.array(z.object({ file: z.string(), destination: z.string() })),
    }),
  ),
});

export function kfarmSides(reportJson: string): Map<string, Side> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(reportJson);
  } catch {
    return undefined;
  }
  const report = Report.safeParse(parsed);
  if (!report.success) return undefined;
  const sides = new Map<string, Side>();
  for (const k of report.data.kernels) {
    sides.set(k.kernel, {
      verdict: k.verdict,
      files: k.modules.map((m) => m.file).sort(),
      destinations: k.modules.map((m) => relativeDestination(m.destination, k.kernel)).sort(),
      detail: [k.reason, k.message].filter(Boolean).join(': ').slice(0, 300),
    });
  }
  return sides;
}
