import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { ContainerRuntime } from '../executor/runtime.js';
import { KfarmError, describeError } from '../errors/kfarm-error.js';
import { LABEL_KERNELS } from '../images/catalog.js';
import type { BlobStore } from '../queue/blob-store.js';
import type { Processor } from '../queue/build-queue.js';
import type { JobPayload, KernelRecord } from '../job/job-payload.js';
import { currentInstance, ownerIsGone, ownerPid, processStartTime } from '../process/instance.js';
import { isAlive } from '../process/pid.js';
import { CompileSlots } from './compile-slots.js';
import { runInContainer } from './run-in-container.js';

export interface WorkerDeps {
  runtime: ContainerRuntime;
  blobs: BlobStore;
  logger: Logger;
  hostname: string;
  /** aborted on SIGINT/SIGTERM: running containers are killed and removed */
  signal: AbortSignal;
  /**
   * At most this many builds compile at once. Give the queue more jobs than this (one more):
   * the extra job's container is created and started while the others compile, and gets its
   * source when a slot frees, so the engine's part of a job is not in series with the builds.
   * Unset: every job the queue hands over compiles at once.
   */
  compileSlots?: number;
}

/** Labels on every build container; orphans are found and removed by them. */
export const LABEL_HOST = 'kfarm.host';
export const LABEL_PID = 'kfarm.pid';
/** "<pid>:<start time>": which run of the process (a restarted PID 1 keeps its pid) */
export const LABEL_INSTANCE = 'kfarm.instance';

/** Turns one queue job into one container run and stores what came out as blobs. */
export function buildProcessor(deps: WorkerDeps): Processor {
  const slots = deps.compileSlots === undefined ? undefined : new CompileSlots(deps.compileSlots);
  return async (payload, job) => {
    const logger = deps.logger.child({ job: job.id.slice(0, 12), kernel: payload.kernel, image: payload.image, attempt: job.attempt });
    const jobStarted = performance.now();
    // The inputs come from Redis while the engine answers about the image: one round trip
    // less in series (a remote Redis's source transfer overlaps the inspect). Settled into
    // values at once, so an image refusal below never leaves a rejection unhandled.
    const inputs = fetchInputs(deps, payload).then(
      (value) => ({ value }),
      (err: unknown) => ({ err }),
    );
    const image = await deps.runtime.inspectImage(payload.imageRef);
    if (!image) {
      throw new KfarmError('IMAGE_NOT_FOUND', `image ${payload.imageRef} is not on worker ${deps.hostname}`, {
        context: { image: payload.imageRef, worker: deps.hostname },
        hint: `Run \`kfarm images sync ${payload.image} --kernels '${payload.kernel}'\` on ${deps.hostname}.`,
      });
    }
    // Hosts build their images themselves and may hold other kernels: a missing one is this
    // worker's gap (retried, perhaps elsewhere), never a cached "missing-headers" verdict.
    if (!(image.labels[LABEL_KERNELS] ?? '').split(/\s+/).includes(payload.kernel)) {
      throw new KfarmError('IMAGE_NOT_FOUND', `image ${payload.imageRef} on worker ${deps.hostname} does not hold kernel ${payload.kernel}`, {
        context: { image: payload.imageRef, worker: deps.hostname, kernel: payload.kernel },
        hint: `Run \`kfarm images sync ${payload.image} --kernels '${payload.kernel}'\` on ${deps.hostname}.`,
      });
    }
    // The job's key holds the coordinator's image id: a result from another build of this
    // image (another compiler, other headers) must never be stored under it.
    if (image.id !== payload.imageId) {
      throw new KfarmError('IMAGE_MISMATCH', `image ${payload.imageRef} on worker ${deps.hostname} is another build than the one the job asks for`, {
        context: { image: payload.imageRef, worker: deps.hostname, kernel: payload.kernel, wanted: payload.imageId, found: image.id },
        hint:
          `This worker's gap, not the module's: the job is retried, perhaps on another worker, and nothing is built or cached here. ` +
          `To build on ${deps.hostname}, give it the coordinator's image (\`docker save ${payload.imageRef} | ssh ${deps.hostname} docker load\`).`,
      });
    }
    await job.progress('fetching source');
    const fetched = await inputs;
    if ('err' in fetched) throw fetched.err;
    const { source, depends } = fetched.value;
    await job.progress('compiling');
    logger.info('container starting');
    const slot = slots?.acquire();
    let out: Awaited<ReturnType<typeof runInContainer>>;
    try {
      out = await runInContainer(
        {
          runtime: deps.runtime,
          logger,
          signal: deps.signal,
          ...(slot ? { compileSlot: () => slot.granted } : {}),
          labels: {
            'kfarm.build': payload.buildId,
            'kfarm.job': job.id,
            'kfarm.kernel': payload.kernel,
            [LABEL_HOST]: deps.hostname,
            [LABEL_PID]: String(process.pid),
            [LABEL_INSTANCE]: currentInstance(),
          },
        },
        // by id, checked above: the tag may move to another build before the container starts
        { ...payload, imageRef: image.id },
        source,
        depends,
      );
    } finally {
      // the compile is over (or never came): the next prepared container may go
      slot?.release();
    }
    try {
      await job.progress('storing results');
      // every blob at once (the container's removal runs alongside): round trips in parallel
      const put = (data: Buffer | undefined) => (data ? deps.blobs.put(data) : Promise.resolve(undefined));
      const [modules, makeLog, symvers, kernelConfig, log] = await Promise.all([
        Promise.all(
          out.modules.map(async (m) => ({
            builtName: m.builtName,
            destName: m.destName,
            destLocation: m.destLocation,
            installLocation: m.installLocation,
            suffix: m.suffix,
            ...(m.data ? { file: await deps.blobs.put(m.data) } : {}),
          })),
        ),
        put(out.makeLog),
        put(out.symvers),
        put(out.kernelConfig),
        deps.blobs.put(out.log),
      ]);
      const record: KernelRecord = {
        schemaVersion: 1,
        kernel: payload.kernel,
        arch: payload.arch,
        image: payload.image,
        verdict: out.verdict,
        ...(out.reason ? { reason: out.reason } : {}),
        ...(out.message ? { message: out.message } : {}),
        ...(out.firstError ? { firstError: out.firstError } : {}),
        ...(out.driver.packageName !== undefined ? { packageName: out.driver.packageName } : {}),
        ...(out.driver.packageVersion !== undefined ? { packageVersion: out.driver.packageVersion } : {}),
        ...(out.driver.failedStage ? { failedStage: out.driver.failedStage } : {}),
        modules,
        ...(out.driver.makeInvocation ? { makeInvocation: out.driver.makeInvocation } : {}),
        ...(out.driver.warnings.length ? { warnings: out.driver.warnings } : {}),
        ...(makeLog ? { makeLog } : {}),
        ...(symvers ? { symvers } : {}),
        ...(kernelConfig ? { kernelConfig } : {}),
        log,
        logTruncated: out.logTruncated,
        durationMs: out.durationMs,
        worker: deps.hostname,
        attempt: job.attempt,
        finishedAt: new Date().toISOString(),
        cacheable: out.cacheable,
      };
      // the job is done when its container is gone: none outlives a finished job
      await out.removed;
      // jobMs - buildMs - waitMs (for a compile slot): what the worker added (bench/matrix.ts reads it)
      const jobMs = Math.round(performance.now() - jobStarted);
      logger.info(
        { verdict: record.verdict, reason: record.reason, ms: record.durationMs, jobMs, buildMs: Math.round(out.phases?.run ?? 0), waitMs: Math.round(out.phases?.ready ?? 0) },
        'job done',
      );
      return record;
    } finally {
      // a failed store too: the container is gone before the job ends either way
      await out.removed;
    }
  };
}

/** The job's source and, for BUILD_DEPENDS, each dependency's Module.symvers as its build on this kernel wrote it. */
async function fetchInputs(deps: WorkerDeps, payload: JobPayload): Promise<{ source: Buffer; depends: Array<{ name: string; version: string; symvers: Buffer }> }> {
  const wanted = (payload.dependsOn ?? []).flatMap((d) => (d.symvers ? [{ name: d.name, version: d.version, sha256: d.symvers.sha256 }] : []));
  const [source, ...symvers] = await Promise.all([deps.blobs.get(payload.sourceSha256), ...wanted.map((d) => deps.blobs.get(d.sha256))]);
  return { source: source, depends: wanted.map((d, i) => ({ name: d.name, version: d.version, symvers: symvers[i] as Buffer })) };
}

/**
 * Removes build containers that a kfarm process on this host left behind: one that is dead, or
 * an earlier run under this process's own pid (a compose worker restarted as PID 1 again).
 */
export async function reapOrphans(runtime: ContainerRuntime, hostname: string, logger: Logger): Promise<number> {
  const containers = await runtime.listContainers({ [LABEL_HOST]: hostname });
  const self = currentInstance();
  let removed = 0;
  for (const c of containers) {
    const owner = { instance: c.labels[LABEL_INSTANCE], pid: c.labels[LABEL_PID] };
    const pid = ownerPid(owner);
    const state = pid === undefined ? { alive: false, startTime: undefined } : { alive: isAlive(pid), startTime: processStartTime(pid) };
    if (!ownerIsGone(owner, self, state)) continue;
    await runtime.removeContainer(c.id);
    removed++;
  }
  if (removed) logger.warn({ removed }, 'removed build containers left by a kfarm process that is gone');
  return removed;
}

/**
 * Removes this process's own containers (builds and boots) that are still there when it stops:
 * a removal that failed, a build that was starting when the abort came.
 */
export async function removeOwnContainers(runtime: ContainerRuntime, logger: Logger): Promise<void> {
  const left = await runtime.listContainers({ [LABEL_INSTANCE]: currentInstance() }).catch(() => []);
  for (const c of left) {
    await runtime.removeContainer(c.id).catch((err: unknown) => logger.warn({ container: c.id, err: describeError(err) }, 'could not remove a build container'));
  }
}
