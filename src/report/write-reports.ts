import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BuildReport } from './report.js';

/**
 * Every view of one report, written to the out dir: report.json (the model), and the views
 * CI systems and people read. `kfarm build` and `kfarm verify` both end here, so each view
 * always agrees with report.json.
 */
export async function writeReports(outDir: string, report: BuildReport): Promise<void> {
  await writeFile(path.join(outDir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
}
