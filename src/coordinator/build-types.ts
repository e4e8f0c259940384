import type { Logger } from 'pino';
import type { BuildOptions } from '../config/build-options.js';
import type { Env } from '../config/env.js';
import type { ContainerRuntime } from '../executor/runtime.js';
import type { KernelTarget } from '../matrix/kernel-target.js';
import type { PackedFile } from '../packaging/pack-out-dir.js';
import type { PackFormat } from '../packaging/packer.js';
import type { KernelRecord } from '../job/job-payload.js';
import type { BuildReport } from '../report/report.js';
import type { OutDirStage } from '../report/out-dir.js';

// What a build is asked, what it needs and what it tells: apart from build.ts, so that the
// modules runBuild calls (run-jobs, refusal-report) and the CLI take them without a circle.

export interface BuildRequest {
  /** one or more module sources, each with its dkms.conf; several build in one run (one report) */
  sourceDirs: string[];
  /** kernel selector (see matrix/kernel-selector.ts); default: every kernel of every image */
  kernels: string | undefined;
  outDir: string;
  options: BuildOptions;
  /** builds at once in this process (local mode) */
  concurrency: number;
  /** ignore finished results of earlier builds */
  noCache: boolean;
  /** formats besides the DKMS tarballs (always written), packed from them once the build is done */
  formats?: PackFormat[];
  /** --sign-key/--sign-cert: sign every built module before anything is written (src/signing/) */
  signing?: { keyPath: string; certPath: string; pin?: string };
  /** --cache-size: the result store's bound (4G, 500M); else $KFARM_CACHE_SIZE, else 4G */
  cacheSize?: string;
  /** --junit: the JUnit XML also written here (the out dir always has junit.xml) */
  junitPath?: string;
}

export type BuildEvent =
  | { type: 'note' | 'warning'; text: string }
  | { type: 'plan'; source: string; targets: KernelTarget[]; where: string }
  | { type: 'kernel'; kernel: string; state: 'queued' | 'running' | 'retrying'; detail?: string }
  | { type: 'kernel-done'; kernel: string; record: KernelRecord; cached: boolean };

export interface BuildDeps {
  env: Env;
  runtime: ContainerRuntime;
  logger: Logger;
  signal: AbortSignal;
  onEvent: (event: BuildEvent) => void;
}

/** `--kernels new` found every held kernel covered by an earlier build of each source: nothing ran. */
export interface NothingNew {
  nothingNew: true;
  held: number;
}

/** The run's report (every module's rows) and each module's own report (for its table). */
export interface BuildOutcome {
  report: BuildReport;
  modules: BuildReport[];
  /** the packages of --format, paths relative to the out dir */
  packages: PackedFile[];
  /** everything the build wrote to --out, staged and not yet in it: the caller commits it once, at the command's end */
  output: PendingOutput;
}

/**
 * A build's out dir writes, staged (report/out-dir.ts): `kfarm build --verify load` stages the
 * load results in `stage` too, then `commit` swaps it all in at once (SHA256SUMS last) and
 * records the build history; `discard` (a no-op after commit) leaves --out as it was.
 */
export interface PendingOutput {
  stage: OutDirStage;
  commit(): Promise<void>;
  discard(): Promise<void>;
}
