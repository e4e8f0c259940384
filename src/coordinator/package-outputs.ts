import type { Artifact, KernelRecord } from '../job/job-payload.js';
import { binariesOnlyLayout, fullLayout, fullTarballName, perKernelTarballName, type DkmsPackage, type KernelBinaries } from '../packaging/dkms-tarball/layout.js';
import { writeTarGz } from '../packaging/write-file.js';
import { type WrittenFile } from '../util/write-atomic.js';
import type { OutDirStage } from '../report/out-dir.js';
import type { KernelResult } from '../report/report.js';
import { sourceEntries, type SourceArchive } from '../source/source-archive.js';
import { insideDir } from '../util/inside-dir.js';

/**
 * Stages what a build of one source produced, for the out dir's one commit (report/out-dir.ts):
 * logs/<kernel>.log for every kernel, a binaries-only DKMS tarball per built kernel, and one
 * full tarball (source + every kernel). A kernel that no longer builds loses its stale tarball
 * from an earlier run (at the commit). Every file name here is made of names that came back
 * from builds; they were checked where they entered (driver result, record schema), and the
 * stage checks each path again to lie inside the out dir before anything is written or removed.
 * Paths handed back name each file's place in the out dir, not the stage.
 */
export async function packageOutputs(input: {
  stage: OutDirStage;
  /** where the logs go below the out dir: `logs`, or `logs/<name>-<version>` when a run builds several sources */
  logDir: readonly string[];
  pkg: DkmsPackage;
  source: SourceArchive;
  /** each kernel's record with the blobs it refers to, fetched when it finished */
  results: ReadonlyArray<{ record: KernelRecord; cached: boolean; files: ReadonlyMap<string, Buffer> }>;
}): Promise<{ results: KernelResult[]; fullTarball: WrittenFile | undefined }> {
  const { stage, pkg } = input;
  const binaries: KernelBinaries[] = [];
  const results: KernelResult[] = [];
  // the second lock: each name one plain segment (a `/` in a name from a build is refused, never a subdirectory)
  const one = (...parts: string[]) => (insideDir(stage.dir, ...parts), parts.join('/'));
  const tarGz = async (name: string, entries: Parameters<typeof writeTarGz>[1]): Promise<WrittenFile> => ({
    ...(await stage.stageWith(one(name), (target) => writeTarGz(target, entries))),
    path: insideDir(stage.dir, name),
  });
  for (const { record, cached, files } of input.results) {
    const blob = (ref: Artifact | undefined): Buffer => {
      const data = files.get(ref?.sha256 ?? '');
      if (!data) throw new Error(`${record.kernel}: blob ${ref?.sha256 ?? '(none)'} was not fetched`); // a bug, not bad input
      return data;
    };
    const { path: logPath } = await stage.stageFile(one(...input.logDir, `${record.kernel}.log`), blob(record.log));
    const tarName = perKernelTarballName(pkg, record.kernel, record.arch);
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
      tarball = await tarGz(tarName, binariesOnlyLayout(pkg, kernel));
    } else {
      await stage.remove(one(tarName));
    }
    results.push({ record, cached, logPath, tarball });
  }
  const fullName = fullTarballName(pkg);
  if (binaries.length === 0) {
    await stage.remove(one(fullName));
    return { results, fullTarball: undefined };
  }
  const fullTarball = await tarGz(fullName, fullLayout(binaries, await sourceEntries(input.source.tar)));
  return { results, fullTarball };
}
