import type { Logger } from 'pino';
import type { ContainerRuntime } from '../executor/runtime.js';
import type { PackFormat } from '../packaging/packer.js';
import { buildReport, type BuildReport } from '../report/report.js';
import { OutDirStage } from '../report/out-dir.js';
import { setSigning } from '../report/signing-report.js';
import type { SigningSetup } from '../signing/index.js';
import type { SourceArchive } from '../source/source-archive.js';
import { toolVersion } from '../version.js';
import type { BuildEvent, BuildOutcome } from './build-types.js';
import type { ModuleIdentity } from './module-identity.js';
import { packageOutputs } from './package-outputs.js';
import type { JobResult } from './run-jobs.js';
import { combineReports } from './combined-report.js';

/** One source of the run once its jobs ran: who the module is and each kernel's result. */
export interface SettledModule {
  source: SourceArchive;
  identity: ModuleIdentity;
  results: JobResult[];
  /** the module's own warnings (from its kernels' records and the settling) */
  warnings: string[];
}

export interface WriteBuildOutputsInput {
  outDir: string;
  /** every source of the run, in command-line order */
  modules: readonly SettledModule[];
  /** more than one source: logs go below logs/<name>-<version>, warnings name the module */
  several: boolean;
  startedAt: Date;
  /** runJobs's warnings (results refused, built again): in the first module's report */
  farmWarnings: readonly string[];
  /** --sign-key/--sign-cert, checked before any build (checkSigningSetup) */
  signing?: { setup: SigningSetup; labels: Record<string, string> };
  formats?: PackFormat[];
  junitPath?: string;
  /** once the outputs are in --out (the build history): run by the outcome's `output.commit()` right after the swap */
  afterCommit?: () => Promise<void>;
  deps: { runtime: ContainerRuntime; logger: Logger; signal: AbortSignal; onEvent: (event: BuildEvent) => void };
}

/**
 * What a build writes to --out, once every job has run: each module signed (when asked),
 * packaged (logs, tarballs) and reported, the run's combined report.json and junit.xml, then
 * the packages of --format. All of it is staged through the out dir's writer
 * (report/out-dir.ts) and handed back uncommitted in `output`: the command commits once at its
 * end (after `--verify load` staged its results in the same stage), SHA256SUMS written then,
 * once. A failure here discards the stage: --out stays as it was.
 */
export async function writeBuildOutputs(input: WriteBuildOutputsInput): Promise<BuildOutcome> {
  const { several, startedAt, signing, deps } = input;
  const stage = await OutDirStage.open(input.outDir);
  try {
    const outDir = stage.dir;
    const reports: BuildReport[] = [];
    for (const { source, identity, results, warnings: moduleWarnings } of input.modules) {
      for (const warning of moduleWarnings) deps.onEvent({ type: 'warning', text: several ? `${identity.name}: ${warning}` : warning });
      // signing and packing load only when asked for (openssl, rpmbuild and dpkg wrappers): a warm build is a few hundred ms
      const written = signing
        ? await (await import('./sign-results.js')).signResults(results, signing.setup, { runtime: deps.runtime, logger: deps.logger, labels: signing.labels, signal: deps.signal })
        : results;
      const outputs = await packageOutputs({
        stage,
        logDir: several ? ['logs', `${identity.name}-${identity.version}`] : ['logs'],
        pkg: { name: identity.name, version: identity.version, dkmsConf: source.dkmsConf },
        source,
        results: written,
      });
      reports.push(
        buildReport({
          toolVersion,
          module: identity.name,
          version: identity.version,
          source: { dir: source.dir, sha256: source.sha256 },
          startedAt,
          finishedAt: new Date(),
          outDir,
          results: outputs.results,
          fullTarball: outputs.fullTarball,
          // runJobs printed its own (results refused, built again) as they happened
          warnings: [...(reports.length === 0 ? input.farmWarnings : []), ...moduleWarnings],
        }),
      );
    }
    // signed modules come with what a fleet enrols: the certificate in DER and ENROLL.md, listed in the report (and SHA256SUMS)
    const enrol = signing ? await (await import('./stage-signing-files.js')).stageSigningFiles(stage, signing.setup.key) : undefined;
    const report = combineReports(reports, { startedAt, finishedAt: new Date() });
    if (enrol) setSigning(report, enrol);
    await stage.stageReports(report, input.junitPath ? { junit: input.junitPath } : {});
    // the other formats are made from what was just staged (the stage is the view they read), as `kfarm pack` would
    const packages = input.formats?.length ? await (await import('../packaging/pack-out-dir.js')).packOutDir(stage, input.formats, deps.logger) : [];
    const output = {
      stage,
      commit: async () => {
        await stage.commit();
        // the history says what --out holds: recorded once it does
        await input.afterCommit?.();
      },
      discard: () => stage.discard(),
    };
    return { report, modules: reports, packages, output };
  } catch (err) {
    await stage.discard();
    throw err;
  }
}
