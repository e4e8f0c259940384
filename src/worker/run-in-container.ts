import type { Logger } from 'pino';
import { driverScript } from '../dkms/driver-script.js';
import { parseDriverResult, type DriverResult, type ModuleSpec, type Reason } from '../dkms/driver-result.js';
import { firstErrorLine } from '../dkms/make-log.js';
import { extractTar, packTar, type TarEntry } from '../executor/archive.js';
import type { ContainerRuntime, IsolatedOutcome } from '../executor/runtime.js';
import { KfarmError, isKfarmError } from '../errors/kfarm-error.js';
import type { JobPayload } from '../queue/job-payload.js';
import { LogBuffer } from './log-buffer.js';

/** uid/gid of nobody in Debian-based images: builds never run as root. */
const BUILD_USER = 65534;

export interface ContainerBuildOutput {
  driver: DriverResult;
  verdict: 'built' | 'excluded' | 'failed';
  reason: Reason | undefined;
  message: string | undefined;
  firstError: string | undefined;
  modules: Array<ModuleSpec & { data: Buffer | undefined }>;
  makeLog: Buffer | undefined;
  log: Buffer;
  logTruncated: boolean;
  durationMs: number;
  /** timeouts and kills may go the other way next time: never reuse them */
  cacheable: boolean;
}

export interface RunContext {
  runtime: ContainerRuntime;
  logger: Logger;
  labels: Record<string, string>;
  signal?: AbortSignal;
}

/**
 * One (module, kernel) pair in one fresh, locked-down container: source and driver in,
 * driver result, modules and log out. Compile errors are results, not exceptions; only
 * infrastructure trouble (Docker, an unreadable output) throws, so the queue can retry it.
 */
export async function runInContainer(ctx: RunContext, payload: JobPayload, sourceTar: Buffer): Promise<ContainerBuildOutput> {
  const { options } = payload;
  const started = Date.now();
  const log = new LogBuffer(options.logLimitBytes);
  const scaffold: TarEntry[] = [
    { path: 'kfarm/driver.sh', type: 'file', mode: 0o755, data: driverScript().script, uid: BUILD_USER, gid: BUILD_USER },
    { path: 'kfarm/source', type: 'directory', mode: 0o755, uid: BUILD_USER, gid: BUILD_USER },
  ];
  const driverArgs = ['build', payload.kernel, payload.arch];
  // A dead man's switch: the worker kills the build at the timeout, but a worker that dies
  // (SIGKILL, a lost host) cannot; then the container ends itself a little later.
  const selfDeadline = options.timeoutSec + Math.min(60, options.timeoutSec);
  const cmd = ['timeout', '--signal=KILL', String(selfDeadline), 'bash', '/kfarm/driver.sh', ...driverArgs];
  const jobs = options.makeJobs ?? Math.max(1, Math.floor(options.cpus));

  // What a build hands back is untrusted: too much of it, or links and paths that lead out,
  // are the build's fault and its verdict (the same input would do it again), not a retry.
  const refused = (err: unknown): ContainerBuildOutput => {
    const reason: Reason = isKfarmError(err, 'UNSAFE_ARCHIVE') ? 'unsafe-output' : 'output-too-large';
    const message = `kfarm refused the build's output: ${(err as Error).message}`;
    log.note(message);
    return { ...emptyOutput(log.toBuffer(), log.truncated, Date.now() - started), reason, message, firstError: message, cacheable: true };
  };
  const isRefusal = (err: unknown) => isKfarmError(err, 'UNSAFE_ARCHIVE') || isKfarmError(err, 'OUTPUT_TOO_LARGE');

  let outcome: IsolatedOutcome;
  try {
    outcome = await ctx.runtime.runIsolated({
    image: payload.imageRef,
    cmd,
    user: `${BUILD_USER}:${BUILD_USER}`,
    env: { KFARM_JOBS: String(jobs), HOME: '/tmp', LANG: 'C.UTF-8' },
    labels: ctx.labels,
    input: [
      { path: '/', tar: await packTar(scaffold) },
      { path: '/kfarm/source', tar: sourceTar },
    ],
    outputPath: '/kfarm/out',
    outputLimitBytes: options.outputLimitBytes,
    tmpfs: {
      '/var/lib/dkms': `rw,exec,size=${Math.min(options.memoryMiB, 8192) >> 1}m,uid=${BUILD_USER},gid=${BUILD_USER},mode=0755`,
      '/tmp': 'rw,exec,size=512m,mode=1777',
      // the other places nobody may write to in a Debian image; /usr/src and /kfarm stay on
      // the writable layer (the driver links the source there), which the runtime watches
      '/var/tmp': 'rw,exec,size=512m,mode=1777',
      '/run/lock': 'rw,noexec,size=1m,mode=1777',
    },
    limits: {
      memoryBytes: options.memoryMiB * 1024 * 1024,
      pids: options.pids,
      cpus: options.cpus,
      writableBytes: sourceTar.length + options.diskMiB * 1024 * 1024,
    },
    timeoutMs: options.timeoutSec * 1000,
    onOutput: (chunk) => log.push(chunk),
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
  } catch (err) {
    if (isRefusal(err)) return refused(err);
    throw err;
  }
  ctx.logger.debug({ exitCode: outcome.exitCode, stoppedBy: outcome.stoppedBy, container: outcome.containerId }, 'container ended');

  if (outcome.stoppedBy === 'aborted') {
    throw new KfarmError('INTERRUPTED', `build of ${payload.kernel} interrupted; its container was removed`, { context: { kernel: payload.kernel } });
  }
  const durationMs = Date.now() - started;
  if (outcome.stoppedBy === 'disk-limit') {
    const message = `the build wrote more than ${options.diskMiB} MiB outside its build tree and was killed`;
    log.note(`killed: ${message}`);
    return {
      ...emptyOutput(log.toBuffer(), log.truncated, durationMs),
      reason: 'disk-full',
      message,
      firstError: `disk limit: more than ${options.diskMiB} MiB written (raise --disk if the build needs it)`,
    };
  }
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
      ? await extractTar(outcome.output, { maxBytes: options.outputLimitBytes, maxEntries: 10_000, allowSymlinks: false }, `output of the ${payload.kernel} build`)
      : [];
  } catch (err) {
    if (isRefusal(err)) return refused(err);
    throw err;
  }
  const file = (name: string) => files.find((f) => f.type === 'file' && f.path === name)?.data;
  const resultText = file('out/result');
  // The driver writes facts as it goes and its verdict last: no verdict means it was cut short.
  const driver = parseDriverResult(resultText?.toString('utf8') ?? '');
  const logText = log.toBuffer();
  if (!driver.verdict) {
    // The driver never wrote its verdict. The memory limit is the build's doing and its verdict;
    // anything else (the engine restarted under it, a broken image) is the farm's: retried.
    if (outcome.oomKilled) {
      return {
        ...emptyOutput(logText, log.truncated, durationMs),
        reason: 'killed',
        message: `the build was killed by the ${options.memoryMiB} MiB memory limit (raise --memory)`,
        firstError: firstErrorLine(logText.toString('utf8')),
        cacheable: false,
      };
    }
    throw new KfarmError('CONTAINER_FAILED', `the ${payload.kernel} build container ended with status ${outcome.exitCode} before the driver wrote a result`, {
      context: { kernel: payload.kernel, exitCode: outcome.exitCode },
      hint: 'The Docker engine may have restarted, or the image is broken; the job is retried.',
    });
  }

  const verdict = driver.verdict;
  const makeLog = file('out/tree/log/make.log');
  const modules = driver.modules.map((m) => ({ ...m, data: verdict === 'built' ? file(`out/tree/module/${m.destName}.ko`) : undefined }));
  if (verdict === 'built' && modules.some((m) => !m.data)) {
    throw new KfarmError('CONTAINER_FAILED', `the ${payload.kernel} build reported success but a module file is missing from its output`, {
      context: { kernel: payload.kernel },
    });
  }
  const failed = verdict === 'failed';
  // make failing because the OOM killer took one of its processes is the memory limit's doing
  const oom = failed && outcome.oomKilled;
  return {
    driver,
    verdict,
    reason: oom ? 'killed' : (driver.reason ?? (failed ? 'driver-error' : undefined)),
    message: oom ? `a process of the build was killed by the ${options.memoryMiB} MiB memory limit (raise --memory)` : driver.message,
    firstError: failed ? (firstErrorLine((makeLog ?? logText).toString('utf8')) ?? driver.message) : undefined,
    modules,
    makeLog,
    log: logText,
    logTruncated: log.truncated,
    durationMs,
    cacheable: driver.reason !== 'driver-error',
  };
}

function emptyOutput(log: Buffer, truncated: boolean, durationMs: number): ContainerBuildOutput {
  return {
    driver: parseDriverResult(''),
    verdict: 'failed',
    reason: undefined,
    message: undefined,
    firstError: undefined,
    modules: [],
    makeLog: undefined,
    log,
    logTruncated: truncated,
    durationMs,
    cacheable: false,
  };
}
