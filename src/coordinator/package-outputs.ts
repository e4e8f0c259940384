import { rm, writeFile } from 'node:fs/promises';
import type { Artifact, KernelRecord } from '../job/job-payload.js';
import { binariesOnlyLayout, fullLayout, fullTarballName, perKernelTarballName, type DkmsPackage, type KernelBinaries } from '../packaging/dkms-tarball/layout.js';
import { writeTarGz } from '../packaging/write-file.js';
import { type WrittenFile } from '../util/write-atomic.js';
import type { KernelResult } from '../report/report.js';
import { sourceEntries, type SourceArchive } from '../source/source-archive.js';
import { insideDir } from '../util/inside-dir.js';
import { makeDirs } from '../util/make-dir.js';

/**
 * Writes what a build of one source produced into the output dir: logs/<kernel>.log for every kernel, a
 * binaries-only DKMS tarball per built kernel, and one full tarball (source + every kernel).
 * A kernel that no longer builds loses its stale tarball from an earlier run.
 * Every file name here is made of names that came back from builds; they were checked where
 * they entered (driver result, record schema), and each path is checked again to lie inside
 * the output dir before anything is written or removed.
 */
export async function packageOutputs(input: {
  outDir: string;
  /** where the logs go below outDir: `logs`, or `logs/<name>-<version>` when a run builds several sources */
  logDir: readonly string[];
  pkg: DkmsPackage;
  source: SourceArchive;
  /** each kernel's record with the blobs it refers to, fetched when it finished */
  results: ReadonlyArray<{ record: KernelRecord; cached: boolean; files: ReadonlyMap<string, Buffer> }>;
}): Promise<{ results: KernelResult[]; fullTarball: WrittenFile | undefined }> {
  const { outDir, pkg } = input;
  await makeDirs(insideDir(outDir, ...input.logDir));
  const binaries: KernelBinaries[] = [];
  const results: KernelResult[] = [];
  for (const { record, cached, files } of input.results) {
    const blob = (ref: Artifact | undefined): Buffer => {
      const data = files.get(ref?.sha256 ?? '');
      if (!data) throw new Error(`${record.kernel}: blob ${ref?.sha256 ?? '(none)'} was not fetched`); // a bug, not bad input
      return data;
    };
    const logPath = insideDir(outDir, ...input.logDir, `${record.kernel}.log`);
    await writeFile(logPath, blob(record.log));
    const tarPath = insideDir(outDir, perKernelTarballName(pkg, record.kernel, record.arch));
    let tarball: WrittenFile | undefined;
    if (record.verdict === 'built') {
      const kernel: KernelBinaries = {
        kernel: record.kernel,
        arch: record.arch,
        modules: record.modules.map((m) => ({ fileName: `${m.destName}${m.suffix ?? '.ko'}`, data: blob(m.file) })),
        makeLog: record.makeLog ? blob(record.makeLog) : undefined,
        kernelConfig: record.kernelConfig ? blob(record.kernelConfig) : undefined,
      };
      binaries.push(kernel);
      tarball = await writeTarGz(tarPath, binariesOnlyLayout(pkg, kernel));
    } else {
      await rm(tarPath, { force: true });
    }
    results.push({ record, cached, logPath, tarball });
  }
  const fullPath = insideDir(outDir, fullTarballName(pkg));
  if (binaries.length === 0) {
    await rm(fullPath, { force: true });
    return { results, fullTarball: undefined };
  }
  const fullTarball = await writeTarGz(fullPath, fullLayout(binaries, await sourceEntries(input.source.tar)));
  return { results, fullTarball };
}
