import type { KernelRecord } from '../job/job-payload.js';
import type { Reason, Verdict } from '../dkms/verdicts.js';
import type { LoadReport } from '../job/verify-job.js';
import type { WrittenFile } from '../util/write-atomic.js';
import { cleanText, TEXT_LIMITS } from '../util/clean-text.js';
import { debianArchOf, releaseOfImage } from './release-arch.js';

/** report.json: what a build did, per kernel. Versioned; every artifact carries its sha256. */
export interface ModuleReport {
  name: string;
  builtName: string;
  file: string;
  sha256: string;
  size: number;
  /** where Debian's dkms installs it on the target */
  destination: string;
  /** DEST_MODULE_LOCATION as dkms.conf wrote it */
  destModuleLocation: string;
}

export interface KernelReport {
  /** which module this row is (PACKAGE_NAME, PACKAGE_VERSION): a build of several sources has rows of each */
  module?: string;
  version?: string;
  kernel: string;
  /** dkms's arch, `uname -m`: x86_64, aarch64 */
  arch: string;
  /** the distro release the job's image was made for: debian-12 */
  release: string;
  /** Debian's name of the arch: amd64, arm64 (`arch` where Debian has no other name) */
  debianArch: string;
  image: string;
  verdict: Verdict;
  /** one of dkms/verdicts.ts's words (docs/formats.md "Failure reasons") */
  reason?: Reason;
  message?: string;
  firstError?: string;
  durationMs: number;
  cached: boolean;
  worker: string;
  /** 1 unless earlier tries hit infrastructure errors (a worker handing a job back does not count) */
  attempt: number;
  log: string;
  logTruncated: boolean;
  modules: ModuleReport[];
  tarball?: ArtifactReport;
  /** `--verify load` / `kfarm verify`: did the built modules load when this exact kernel booted */
  load?: LoadReport;
}

export interface ArtifactReport {
  path: string;
  sha256: string;
  size: number;
}

export interface BuildReport {
  schemaVersion: 1;
  tool: { name: 'kfarm'; version: string };
  module: string;
  version: string;
  source: { dir: string; sha256: string };
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  summary: { built: number; excluded: number; failed: number };
  kernels: KernelReport[];
  fullTarball?: ArtifactReport;
  /** what evaluating dkms.conf printed that DKMS would not stop on (a bash syntax error) */
  warnings: string[];
  /** every module of the run (`kfarm build <src>...`), in the order given; module/version/source above are the first's */
  modules?: ModuleEntry[];
  /** the packages of `--format` / `kfarm pack`, below the out dir (the DKMS tarballs are above) */
  packages?: Array<ArtifactReport & { format: string }>;
  /**
   * `kfarm serve`'s builds only: each kernel series this build touched whose build or load window,
   * judged over the farm's history of this module version, is not ok; open regressions first
   * (docs/formats.md "Regressions"). A local build has none: it has no history.
   */
  regressions?: RegressionReport[];
}

/**
 * What broke where, and since when, as plain data (the farm's regression view, src/service/regressions,
 * computes it; the report only carries and shows it): "builds on 6.1.0-56-amd64, fails since 6.1.0-57-amd64".
 */
export interface RegressionReport {
  module: string;
  version: string;
  release: string;
  /** dkms's arch: x86_64, aarch64 */
  arch: string;
  /** the kernel flavour: amd64, cloud-amd64 */
  flavour: string;
  /** the upstream kernel line: 6.1, 6.12 */
  line: string;
  check: 'build' | 'load';
  /** broken: the newest kernel fails and an earlier one built (open); never-built: every kernel fails; fixed: fails no more */
  state: 'broken' | 'never-built' | 'fixed';
  sentence: string;
  /** broken: the newest kernel that built (loaded) before the failures; fixed: the newest kernel */
  lastGood?: string;
  /** the first kernel of the failing run */
  firstBad?: string;
  /** fixed: the last kernel that failed */
  lastBad?: string;
  /** fixed: the first kernel that built (loaded) again */
  fixedIn?: string;
  /** firstBad's first compiler (or load) error */
  firstError?: string;
  reason?: string;
  /** the farm build that recorded firstBad's verdict */
  buildId?: string;
  /** ISO time the state began */
  since: string;
  /** broken and never-built: Debian's changelog between lastGood's headers and firstBad's, or why it could not be read */
  changelog?: RegressionChangelog;
}

export interface RegressionChangelog {
  lastGood?: { kernel: string; version?: string };
  firstBad: { kernel: string; version?: string };
  /** the image and file read, when one was */
  source?: { image: string; path: string };
  /** newest first: the entries after lastGood's upload up to firstBad's */
  entries: ChangelogEntryReport[];
  omittedEntries: number;
  omittedLines: number;
  /** the entries are the whole span */
  complete: boolean;
  /** why entries are missing or partial (or the changelog could not be read at all) */
  note?: string;
}

/** one Debian changelog entry (service/regressions/debian-changelog.ts parses them) */
export interface ChangelogEntryReport {
  /** the source package: linux */
  package: string;
  /** 6.1.192-3 */
  version: string;
  /** as written: bookworm-security (several, space-separated, in old uploads) */
  distribution: string;
  /** low, medium, high, critical, emergency; '' when the line has none */
  urgency: string;
  /** the lines between the header and the trailer, as written (indentation kept), blank ends removed */
  body: string[];
  /** Name <email> of the trailer; undefined when the entry has no trailer line */
  maintainer?: string;
  /** the trailer's RFC 5322 date, as written */
  date?: string;
}

export interface ModuleEntry {
  name: string;
  version: string;
  source: { dir: string; sha256: string };
  summary: { built: number; excluded: number; failed: number };
  fullTarball?: ArtifactReport;
}

export interface KernelResult {
  record: KernelRecord;
  cached: boolean;
  logPath: string;
  tarball: WrittenFile | undefined;
}

/** Pure: records and written files → the report, paths relative to the output dir. */
export function buildReport(input: {
  toolVersion: string;
  module: string;
  version: string;
  source: { dir: string; sha256: string };
  startedAt: Date;
  finishedAt: Date;
  outDir: string;
  results: readonly KernelResult[];
  fullTarball: WrittenFile | undefined;
  warnings: readonly string[];
}): BuildReport {
  const rel = (p: string) => (p.startsWith(`${input.outDir}/`) ? p.slice(input.outDir.length + 1) : p);
  const artifact = (f: WrittenFile): ArtifactReport => ({ path: rel(f.path), sha256: f.sha256, size: f.size });
  const kernels = input.results.map(({ record, cached, logPath, tarball }): KernelReport => {
    return {
      kernel: record.kernel,
      arch: record.arch,
      // from the job (the target's image name), never from what a container said
      release: releaseOfImage(record.image),
      debianArch: debianArchOf(record.arch),
      image: record.image,
      verdict: record.verdict,
      ...(record.reason ? { reason: record.reason } : {}),
      // records were cleaned at the queue's border; messages the coordinator composed (farm
      // errors, identity conflicts) quote what others said, so they are cleaned here too
      ...(record.message ? { message: cleanText(record.message, TEXT_LIMITS.message) } : {}),
      ...(record.firstError ? { firstError: cleanText(record.firstError, TEXT_LIMITS.firstError) } : {}),
      durationMs: record.durationMs,
      cached,
      worker: record.worker,
      attempt: record.attempt ?? 1,
      log: rel(logPath),
      logTruncated: record.logTruncated,
      modules:
        record.verdict === 'built'
          ? record.modules.map((m) => ({
              name: m.destName,
              builtName: m.builtName,
              file: `${m.destName}${m.suffix ?? '.ko'}`,
              sha256: m.file?.sha256 ?? '',
              size: m.file?.size ?? 0,
              destination: `/lib/modules/${record.kernel}${m.installLocation}/${m.destName}${m.suffix ?? '.ko'}`,
              destModuleLocation: m.destLocation,
            }))
          : [],
      ...(tarball ? { tarball: artifact(tarball) } : {}),
    };
  });
  const count = (v: KernelReport['verdict']) => kernels.filter((k) => k.verdict === v).length;
  return {
    schemaVersion: 1,
    tool: { name: 'kfarm', version: input.toolVersion },
    module: input.module,
    version: input.version,
    source: input.source,
    startedAt: input.startedAt.toISOString(),
    finishedAt: input.finishedAt.toISOString(),
    durationMs: input.finishedAt.getTime() - input.startedAt.getTime(),
    summary: { built: count('built'), excluded: count('excluded'), failed: count('failed') },
    kernels,
    ...(input.fullTarball ? { fullTarball: artifact(input.fullTarball) } : {}),
    warnings: input.warnings.map((w) => cleanText(w, TEXT_LIMITS.warning)),
  };
}
