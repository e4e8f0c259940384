import { withOutDirStage } from './out-dir.js';
import type { BuildReport } from './report.js';

export interface WriteReportsOptions {
  /** `--junit <file>`: the JUnit XML also here (the out dir always has junit.xml); default: none */
  junit?: string;
}

/**
 * Every view of one report (report.json, junit.xml, report.html; out-dir-views.ts) written to
 * the out dir in one commit of its writer (out-dir.ts), with SHA256SUMS for it: for a command
 * that writes nothing else (the refusal report). Commands that write more stage the reports
 * with the rest (`OutDirStage.stageReports`) and commit once. A failure (a full disk, exit 3
 * naming the file) leaves every earlier file whole.
 */
export async function writeReports(outDir: string, report: BuildReport, options: WriteReportsOptions = {}): Promise<void> {
  await withOutDirStage(outDir, (stage) => stage.stageReports(report, options));
}
