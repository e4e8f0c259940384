import path from 'node:path';
import type { BuildOptions } from '../config/build-options.js';
import { KfarmError, isKfarmError } from '../errors/kfarm-error.js';
import type { JobPayload, KernelRecord } from '../job/job-payload.js';
import { parseSelector, selectKernels } from '../matrix/kernel-selector.js';
import type { KernelTarget } from '../matrix/kernel-target.js';
import type { BuiltKernel } from '../matrix/new-kernels.js';
import { jobPriority } from '../queue/job-priority.js';
import { dependencyWaves, readDependsHint } from './dependency-order.js';
import type { ModuleIdentity } from './module-identity.js';

// What `kfarm build` decides before and between its waves of jobs, from plain data the shell
// (build.ts) has already read: which kernels each source builds for, the BUILD_DEPENDS waves, each
// job's payload, label and priority, and the refusals of the command line. Pure: no file, engine
// or Redis here, so every decision is tested without Docker (test/unit/build-plan.test.ts).

/** What the plan needs of a packed source (source/source-archive.ts's SourceArchive has these). */
export interface SourceFacts {
  /** absolute path */
  dir: string;
  sha256: string;
  dkmsConf: Buffer;
  /** the translation units it compiles (source/compile-units.ts): its jobs' priority */
  compileUnits: number;
}

/** The sources of the run, refused or ordered before any catalog is listed or session opened. */
export interface SourceOrder<S extends SourceFacts> {
  /** as given on the command line */
  dirs: readonly string[];
  /** packed, in command-line order */
  sources: readonly S[];
  /** indexes into sources, dependencies first (dependency-order.ts) */
  waves: number[][];
  /** per source, the sources of earlier waves it gets the Module.symvers of */
  depends: number[][];
}

/** Right after packing: the same source twice is refused; BUILD_DEPENDS (read as text) order the waves. */
export function orderSources<S extends SourceFacts>(dirs: readonly string[], sources: readonly S[]): SourceOrder<S> {
  refuseRepeats(dirs, sources);
  // a dependency no source provides, or a cycle, is decided per kernel by its release's dkms (in the driver)
  const { waves, depends } = dependencyWaves(sources.map((s, i) => ({ dir: dirs[i] as string, hint: readDependsHint(s.dkmsConf.toString('utf8')) })));
  return { dirs, sources, waves, depends };
}

/** `--kernels new` (or a selector with it): each source's build history must be read before planning. */
export function wantsHistory(selector: string): boolean {
  return parseSelector(selector).some((t) => t.kind === 'new');
}

/** One source of the run with the kernels it builds for. */
export interface PlannedSource<S extends SourceFacts> {
  /** its place on the command line (dependency-order.ts works with these) */
  index: number;
  dir: string;
  source: S;
  targets: KernelTarget[];
  /** how progress names its jobs: the kernel alone for a single source */
  label: string | undefined;
}

export interface BuildPlan<S extends SourceFacts> {
  /** the sources with kernels to build, in command-line order (one with nothing new is left out) */
  sources: PlannedSource<S>[];
  /** the sources' waves, dependencies first, none empty */
  waves: PlannedSource<S>[][];
  /** per command-line index, the indexes of the sources it gets the Module.symvers of */
  depends: number[][];
  /** more than one source was given: labels, log dirs and warnings name the module */
  several: boolean;
  buildId: string;
  options: BuildOptions;
  driverSha256: string;
}

export interface PlanInput<S extends SourceFacts> {
  order: SourceOrder<S>;
  /** --kernels, else $KFARM_KERNELS, else `all` */
  selector: string;
  /** every kernel the farm's images hold (images/catalog.ts kernelTargets) */
  held: readonly KernelTarget[];
  /** per source (command-line order), what earlier builds covered; read only when wantsHistory */
  lastBuilt?: ReadonlyArray<readonly BuiltKernel[]>;
  options: BuildOptions;
  /** the driver's sha256: part of every job's key */
  driverSha256: string;
  /** makes the build id unique (the shell gives Date.now() in base 36) */
  stamp: string;
}

/** Which kernels each source builds for, in which waves. `nothingNew` when `--kernels new` left every source without a kernel. */
export function planBuild<S extends SourceFacts>(input: PlanInput<S>): BuildPlan<S> | { nothingNew: true; held: number } {
  const { order, selector, held } = input;
  const wantsNew = wantsHistory(selector);
  const several = order.sources.length > 1;
  const planned: PlannedSource<S>[] = [];
  for (const [i, source] of order.sources.entries()) {
    let targets: KernelTarget[];
    try {
      targets = selectKernels(selector, held, wantsNew ? { lastBuilt: input.lastBuilt?.[i] ?? [] } : {});
    } catch (err) {
      // a nightly `--kernels new` with nothing new for this source has done its job: not an error
      if (wantsNew && isKfarmError(err, 'KERNEL_SELECTOR_EMPTY')) continue;
      throw err;
    }
    planned.push({ index: i, dir: order.dirs[i] as string, source, targets, label: several ? path.basename(source.dir) : undefined });
  }
  if (planned.length === 0) return { nothingNew: true, held: held.length };
  return {
    sources: planned,
    waves: order.waves.map((wave) => wave.flatMap((i) => planned.filter((p) => p.index === i))).filter((w) => w.length > 0),
    depends: order.depends,
    several,
    buildId: `${planned
      .map((p) => path.basename(p.source.dir))
      .join('+')
      .slice(0, 200)}-${input.stamp}`,
    options: input.options,
    driverSha256: input.driverSha256,
  };
}

/** A module of an earlier wave, settled: who it is and each kernel's record. */
export interface BuiltModule {
  identity: ModuleIdentity;
  results: ReadonlyArray<{ record: KernelRecord }>;
}

export interface PlannedJob<S extends SourceFacts> {
  planned: PlannedSource<S>;
  payload: JobPayload;
  /** how progress names it: its kernel, or `<source>: <kernel>` */
  label: string;
  /** its queue priority: the source's size (queue/job-priority.ts) */
  priority: number;
}

/**
 * The jobs of one wave, in source then kernel order. Each gets the dependencies (of earlier
 * waves, `settled` by command-line index) that built on its kernel; one that did not is the
 * driver's to judge, as the kernel's release's dkms does.
 */
export function waveJobs<S extends SourceFacts>(plan: BuildPlan<S>, wave: readonly PlannedSource<S>[], settled: ReadonlyMap<number, BuiltModule>): PlannedJob<S>[] {
  const jobs: PlannedJob<S>[] = [];
  for (const p of wave) {
    const needs = (plan.depends[p.index] ?? []).map((d) => settled.get(d));
    for (const t of p.targets) {
      const payload = jobPayload(p.source, t, plan.options, plan.buildId, plan.driverSha256);
      const onKernel = needs.flatMap((n) => {
        const result = n?.results.find((r) => r.record.kernel === t.kernel && r.record.image === t.image);
        return n && result?.record.verdict === 'built' ? [{ identity: n.identity, record: result.record }] : [];
      });
      if (onKernel.length > 0) {
        payload.dependsOn = onKernel.map((n) => ({ name: n.identity.name, version: n.identity.version, ...(n.record.symvers ? { symvers: n.record.symvers } : {}) }));
      }
      jobs.push({ planned: p, payload, label: p.label ? `${p.label}: ${payload.kernel}` : payload.kernel, priority: jobPriority(p.source.compileUnits) });
    }
  }
  return jobs;
}

/** The images with only the kernels the plan builds on: those --sign-key sets a signer up for, before any build. */
export function signingImages<I extends { name: string; kernels: string[] }>(images: readonly I[], plan: BuildPlan<SourceFacts>): I[] {
  const wanted = new Set(plan.sources.flatMap((p) => p.targets.map((t) => `${t.image}\0${t.kernel}`)));
  return images.map((i) => ({ ...i, kernels: i.kernels.filter((k) => wanted.has(`${i.name}\0${k}`)) })).filter((i) => i.kernels.length > 0);
}

/** One kernel's job: what decides its result (source, kernel, image id, driver, options) and who asked. */
export function jobPayload(source: Pick<SourceFacts, 'sha256'>, target: KernelTarget, options: BuildOptions, buildId: string, driverSha256: string): JobPayload {
  return {
    schemaVersion: 1,
    sourceSha256: source.sha256,
    kernel: target.kernel,
    arch: target.arch,
    image: target.image,
    imageRef: target.imageRef,
    imageId: target.imageId,
    driverSha256,
    options,
    buildId,
  };
}

/** The same source twice would be the same jobs twice and one module's outputs written twice. */
function refuseRepeats(dirs: readonly string[], sources: readonly SourceFacts[]): void {
  const seen = new Map<string, string>();
  for (const [i, s] of sources.entries()) {
    const dir = dirs[i] as string;
    const other = seen.get(s.sha256) ?? seen.get(s.dir);
    if (other !== undefined) {
      throw new KfarmError('BAD_OPTION', `${dir} and ${other} are the same module source: give each source once`, {
        context: { source: s.dir, sha256: s.sha256 },
        hint: 'kfarm build <source-dir>... builds each source once; a source named twice (or two identical copies) would build the same jobs twice.',
      });
    }
    seen.set(s.sha256, dir);
    seen.set(s.dir, dir);
  }
}
