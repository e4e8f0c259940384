import type { BuildReport } from '../report/report.js';
import { OutDirStage } from '../report/out-dir.js';

// SHA256SUMS is the out dir writer's (src/report/out-dir-checksums.ts): written last, once, at its commit.
export { deliverablesOf, hashFile, REPORT_FILES, SUMS_FILE, type Deliverable } from '../report/out-dir-checksums.js';

/**
 * `<outDir>/SHA256SUMS` for this report as the out dir holds it now: a commit of the out dir's
 * writer that stages nothing else. Each listed file must be what the report says it is, or
 * nothing is written (exit 2). Returns the file's path.
 */
export async function writeChecksums(outDir: string, report: BuildReport): Promise<string> {
  const stage = await OutDirStage.open(outDir);
  try {
    await stage.commit({ report });
  } finally {
    await stage.discard();
  }
  return `${stage.dir}/SHA256SUMS`;
}
