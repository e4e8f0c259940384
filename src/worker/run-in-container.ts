import { gzipSync } from 'node:zlib';
import type { Logger } from 'pino';
import { driverScript } from '../dkms/driver-script.js';
import { identityFromLog, parseDriverResult, type DriverResult, type ModuleSpec, type ModuleSuffix } from '../dkms/driver-result.js';
import type { Reason } from '../dkms/verdicts.js';
import { failureCause } from '../dkms/make-log.js';
import { extractTar } from '../executor/archive.js';
import type { ContainerRuntime, IsolatedOutcome } from '../executor/runtime.js';
import { KfarmError, isKfarmError } from '../errors/kfarm-error.js';
import type { JobPayload } from '../job/job-payload.js';
import { TEXT_LIMITS, cleanText } from '../util/clean-text.js';
import { containerMounts } from './container-mounts.js';
import { LogBuffer } from './log-buffer.js';

/**
 * The container starts as root with no capability but these two: the driver's supervisor
 * needs them only to run every untrusted step as uid 65534 (setpriv), and to kill them.
 */
const SUPERVISOR_CAPS = ['SETUID', 'SETGID'];
/** the output tar's headers on top of the output cap the driver enforces on the files */
const TAR_OVERHEAD = 1024 * 1024;

export interface ContainerBuildOutput {
  driver: DriverResult;
  verdict: 'built' | 'excluded' | 'failed';
  reason: Reason | undefined;
  message: string | undefined;
  firstError: string | undefined;
  modules: Array<ModuleSpec & { suffix: ModuleSuffix; data: Buffer | undefined }>;
  makeLog: Buffer | undefined;
  /** the build's Module.symvers (for modules with BUILD_DEPENDS on this one) */
  symvers?: Buffer | undefined;
  /** the kernel's .config, which dkms 2.8 and 3.0 keep next to make.log */
  kernelConfig: Buffer | undefined;
  log: Buffer;
  logTruncated: boolean;
  durationMs: number;
  /** timeouts and kills may go the other way next time: never reuse them */
  cacheable: boolean;
  /** settles once the container is removed: await it before the job counts as done */
  removed?: Promise<void>;
  /** milliseconds of the container's phases (run: the build itself) */
  phases?: Record<string, number>;
}

export interface RunContext {
  runtime: ContainerRuntime;
  logger: Logger;
  labels: Record<string, string>;
  signal?: AbortSignal;
  /**
   * Resolves when this build may compile: the container is created and started first, and
   * waits for it with its input not yet given (build-worker.ts compile slots).
   */
  compileSlot?: () => Promise<void>;
}

/**
 * One (module, kernel) pair in one fresh, locked-down container: source in on stdin, the
 * driver's output tar out on stdout, the log on stderr. Compile errors and whatever the
 * module's build does to itself are verdicts on the first attempt; only farm trouble (the
 * engine, a container that ended without a result and not by its memory limit) throws, so
 * the queue can retry it, and it carries the attempt's log.
 */
export async function runInContainer(
  ctx: RunContext,
  payload: JobPayload,
  sourceTar: Buffer,
  /** BUILD_DEPENDS: each dependency's Module.symvers from its build on this kernel */
  depends: ReadonlyArray<{ name: string; version: string; symvers: Buffer }> = [],
): Promise<ContainerBuildOutput> {
  const { options } = payload;
  const started = Date.now();
  const log = new LogBuffer(options.logLimitBytes);
  // A dead man's switch: the worker kills the build at the timeout, but a worker that dies
  // (SIGKILL, a lost host) cannot; then the container ends itself a little later.
  // A container prepared ahead may wait up to one other build's timeout for its slot first.
  const selfDeadline = (ctx.compileSlot ? 2 * options.timeoutSec : options.timeoutSec) + Math.min(60, options.timeoutSec);
  // The driver travels as `bash -c` text: nothing is copied into the read-only image.
  const cmd = ['timeout', '--signal=KILL', String(selfDeadline), 'bash', '-c', driverScript().script.toString('utf8'), 'driver.sh', 'build', payload.kernel, payload.arch];

  // What a build hands back is untrusted: too much of it, or links and paths that lead out,
  // are the build's fault and its verdict (the same input would do it again), not a retry.
  const refused = (err: unknown): ContainerBuildOutput => {
    const reason: Reason = isKfarmError(err, 'UNSAFE_ARCHIVE') ? 'unsafe-output' : 'output-too-large';
    const message = cleanText(`kfarm refused the build's output: ${(err as Error).message}`, TEXT_LIMITS.message);
    log.note(message);
    return { ...emptyOutput(log.toBuffer(), log.truncated, Date.now() - started), reason, message, firstError: message, cacheable: true };
  };
  const isRefusal = (err: unknown) => isKfarmError(err, 'UNSAFE_ARCHIVE') || isKfarmError(err, 'OUTPUT_TOO_LARGE');
  const farmFault = (message: string, context: Record<string, string | number>, hint: string, cause?: unknown) =>
    new KfarmError('CONTAINER_FAILED', message, { context: { kernel: payload.kernel, ...context }, hint, log: log.toBuffer(), ...(cause ? { cause } : {}) });

  let outcome: IsolatedOutcome;
  try {
    outcome = await ctx.runtime.runIsolated({
      image: payload.imageRef,
      cmd,
      user: '0:0',
      capAdd: SUPERVISOR_CAPS,
      env: {
        // dkms's -j is what nproc says in the container unless asked for (`dkms -j`)
        ...(options.makeJobs !== undefined ? { KFARM_JOBS: String(options.makeJobs) } : {}),
        ...(options.directives?.length ? { KFARM_DIRECTIVES: options.directives.join('\n') } : {}),
        ...overrideEnv(options.dkmsOverrides ?? []),
        ...(options.compress ? { KFARM_COMPRESS: options.compress } : {}),
        ...(options.sourceDateEpoch !== undefined ? { SOURCE_DATE_EPOCH: String(options.sourceDateEpoch) } : {}),
        KFARM_LOG_LIMIT: String(options.logLimitBytes),
        KFARM_OUTPUT_LIMIT: String(options.outputLimitBytes),
        HOME: '/tmp',
        ...dependsEnv(payload.kernel, depends),
        LANG: 'C.UTF-8',
      },
      labels: ctx.labels,
      stdin: sourceTar,
      outputLimitBytes: options.outputLimitBytes + TAR_OVERHEAD,
      tmpfs: containerMounts(options, sourceTar.length),
      limits: { memoryBytes: options.memoryMiB * 1024 * 1024, pids: options.pids, cpus: options.cpus },
      timeoutMs: options.timeoutSec * 1000,
      onLog: (chunk) => log.push(chunk),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      // removed while the output is unpacked and stored; the worker awaits it before the job ends
      deferRemoval: true,
      ...(ctx.compileSlot ? { beforeInput: ctx.compileSlot } : {}),
    });
  } catch (err) {
    if (isRefusal(err)) return refused(err);
    // the engine failed under this build: the farm's fault, retried, with what the build printed
    if (isKfarmError(err, 'DOCKER_ERROR')) {
      throw new KfarmError('DOCKER_ERROR', err.message, { context: err.context, ...(err.hint ? { hint: err.hint } : {}), cause: err, log: log.toBuffer() });
    }
    throw err;
  }
  ctx.logger.info({ exitCode: outcome.exitCode, stoppedBy: outcome.stoppedBy, container: outcome.containerId, phases: outcome.phases }, 'container ended');
  const removed = outcome.removed ?? Promise.resolve();
  try {
    const out = await verdictOf(outcome);
    return { ...out, removed, ...(outcome.phases ? { phases: outcome.phases } : {}) };
  } catch (err) {
    // a farm fault or an interruption: nothing of this container may outlive the throw
    await removed;
    throw err;
  }

  /** What the ended container's output says: a verdict, or a throw for the farm's faults. */
  async function verdictOf(outcome: IsolatedOutcome): Promise<ContainerBuildOutput> {
    if (outcome.stoppedBy === 'aborted') {
      throw new KfarmError('INTERRUPTED', `build of ${payload.kernel} interrupted; its container was removed`, { context: { kernel: payload.kernel } });
    }
    // the build's time, not the wait for a compile slot before it
    const durationMs = Date.now() - started - (outcome.phases?.ready ?? 0);
    if (outcome.stoppedBy === 'timeout') {
      log.note(`killed: the build ran longer than the ${options.timeoutSec} s timeout`);
      const text = log.toBuffer();
      return {
        ...emptyOutput(text, log.truncated, durationMs),
        reason: 'timeout',
        message: `the build ran longer than ${options.timeoutSec} s and was killed`,
        firstError: `timeout after ${options.timeoutSec} s`,
      };
    }

    let files;
    try {
      files = outcome.output
        ? await extractTar(outcome.output, { maxBytes: options.outputLimitBytes + TAR_OVERHEAD, maxEntries: 10_000, allowSymlinks: false }, `output of the ${payload.kernel} build`)
        : [];
    } catch (err) {
      if (isRefusal(err)) return refused(err);
      throw err;
    }
    const file = (name: string) => files.find((f) => f.type === 'file' && f.path === name)?.data;
    const resultText = file('out/result');
    // The supervisor writes its verdict last, then the output: no verdict means it was cut short.
    const driver = parseDriverResult(resultText?.toString('utf8') ?? '');
    const logText = log.toBuffer();
    if (!driver.verdict) {
      // The memory limit is the build's doing and its verdict. Anything else (the engine
      // restarted under it, a broken image) is the farm's: retried, with this attempt's log.
      if (outcome.oomKilled) {
        const message = `the build was killed by the ${options.memoryMiB} MiB memory limit (raise --memory)`;
        return {
          ...emptyOutput(logText, log.truncated, durationMs),
          reason: 'killed',
          message,
          firstError: firstErrorOf('killed', logText, message),
          cacheable: false,
        };
      }
      throw farmFault(
        `the ${payload.kernel} build container ended with status ${outcome.exitCode} before the driver wrote a result`,
        { exitCode: outcome.exitCode },
        'The Docker engine may have restarted, or the image is broken (`docker run --rm <image> which setpriv tar timeout`); the job is retried.',
      );
    }

    const verdict = driver.verdict;
    const makeLog = file('out/tree/log/make.log');
    const suffix = driver.moduleSuffix;
    const modules = driver.modules.map((m) => ({ ...m, suffix, data: verdict === 'built' ? file(`out/tree/module/${m.destName}${suffix}`) : undefined }));
    const lost = verdict === 'built' ? modules.find((m) => !m.data) : undefined;
    if (lost) {
      // The supervisor checked every module before it said built; one missing from its own output is its failure.
      const message = `the driver reported success but ${lost.destName}${suffix} is not in its output`;
      log.note(message);
      return { ...emptyOutput(log.toBuffer(), log.truncated, durationMs), driver, reason: 'driver-error', message, firstError: message };
    }
    const failed = verdict === 'failed';
    // make failing because the OOM killer took one of its processes is the memory limit's doing
    const oom = failed && outcome.oomKilled;
    const message = oom ? `a process of the build was killed by the ${options.memoryMiB} MiB memory limit (raise --memory)` : driver.message;
    const reason = oom ? 'killed' : (driver.reason ?? (failed ? 'driver-error' : undefined));
    return {
      driver,
      verdict,
      reason,
      message: message === undefined ? undefined : cleanText(message, TEXT_LIMITS.message),
      firstError: failed ? firstErrorOf(reason, makeLog ?? logText, message) : undefined,
      modules,
      makeLog,
      symvers: verdict === 'built' ? file('out/tree/module/Module.symvers') : undefined,
      kernelConfig: verdict === 'built' ? file('out/tree/log/.config') : undefined,
      log: logText,
      logTruncated: log.truncated,
      durationMs,
      // a driver-error or an OOM may go the other way next time
      cacheable: driver.reason !== 'driver-error' && !oom,
    };
  }
}

/** What a person would call the cause (make-log.ts), printable: it is shown on the terminal. */
function firstErrorOf(reason: Reason | undefined, log: Buffer, message: string | undefined): string | undefined {
  const cause = failureCause(reason, log.toString('utf8'), message);
  return cause === undefined ? undefined : cleanText(cause, TEXT_LIMITS.firstError);
}

function emptyOutput(log: Buffer, truncated: boolean, durationMs: number): ContainerBuildOutput {
  return {
    // cut short before the driver's result: who the module is, as far as the log shows it
    driver: { ...parseDriverResult(''), ...identityFromLog(log.toString('utf8')) },
    verdict: 'failed',
    reason: undefined,
    message: undefined,
    firstError: undefined,
    modules: [],
    makeLog: undefined,
    kernelConfig: undefined,
    log,
    logTruncated: truncated,
    durationMs,
    cacheable: false,
  };
}

/** /etc/dkms override files as the driver reads them from its environment. */
function overrideEnv(files: ReadonlyArray<{ name: string; text: string }>): Record<string, string> {
  if (files.length === 0) return {};
  const env: Record<string, string> = { KFARM_OVERRIDE_COUNT: String(files.length) };
  files.forEach((f, i) => {
    env[`KFARM_OVERRIDE_${i}_NAME`] = f.name;
    env[`KFARM_OVERRIDE_${i}`] = f.text;
  });
  return env;
}

/**
 * BUILD_DEPENDS' Module.symvers files as the driver reads them from its environment: one
 * variable each, gzipped and in base64, since Linux caps one environment string at 128 KiB.
 */
const MAX_ENV_STRING = 120 * 1024;
function dependsEnv(kernel: string, depends: ReadonlyArray<{ name: string; version: string; symvers: Buffer }>): Record<string, string> {
  if (depends.length === 0) return {};
  const env: Record<string, string> = { KFARM_DEPEND_COUNT: String(depends.length) };
  depends.forEach((d, i) => {
    const data = gzipSync(d.symvers, { level: 9 }).toString('base64');
    if (data.length > MAX_ENV_STRING) {
      throw new KfarmError('OUTPUT_TOO_LARGE', `${d.name}'s Module.symvers for ${kernel} is too large to hand to a dependent build (${d.symvers.length} bytes)`, {
        context: { kernel, dependency: d.name },
        hint: 'A Module.symvers of that size exports tens of thousands of symbols; split the module or open an issue with its size.',
      });
    }
    env[`KFARM_DEPEND_${i}_NAME`] = d.name;
    env[`KFARM_DEPEND_${i}_VERSION`] = d.version;
    env[`KFARM_DEPEND_${i}`] = data;
  });
  return env;
}
