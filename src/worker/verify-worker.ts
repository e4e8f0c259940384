import type { Logger } from 'pino';
import { KfarmError } from '../errors/kfarm-error.js';
import { currentInstance } from '../process/instance.js';
import { LABEL_HOST, LABEL_INSTANCE, LABEL_PID } from './build-worker.js';
import type { ContainerRuntime } from '../executor/runtime.js';
import type { BlobStore } from '../queue/blob-store.js';
import type { VerifyProcessor } from '../queue/verify-queue.js';
import { kvmUsable } from '../verify/boot-kernel.js';
import { bootAccel, type VerifyResult } from '../job/verify-job.js';
import { verifyKernel, type VerifyContext } from '../verify/verify-kernel.js';
import { ensureVerifyImage } from '../verify/verify-image.js';

/** A counting semaphore: one worker consumes two lanes, its boots together stay within the limit. */
function limiter(limit: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async (fn) => {
    if (active >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/**
 * What a worker does with a boot job: the modules from Redis (each checked against its sha256
 * by the blob store), the kernel from the archive (cached under the state dir, fetched once per
 * worker), one boot through verifyKernel, the console back as a blob.
 */
export function verifyProcessor(deps: {
  runtime: ContainerRuntime;
  blobs: BlobStore;
  stateDir: string;
  logger: Logger;
  worker: string;
  /** this host's name (KFARM_HOSTNAME): labels each boot container with it, this pid and instance, so a killed worker's boots are reaped */
  hostname?: string;
  concurrency: number;
  signal?: AbortSignal;
  /** a KVM boot under `auto` reached no init: this host's KVM cannot run a guest */
  onKvmBroken?: () => void;
}): VerifyProcessor {
  const limit = limiter(deps.concurrency);
  // shared by every boot of this worker: the image, the fetched kernels, what KVM showed
  let image: Promise<string> | undefined;
  let kvm: Promise<boolean> | undefined;
  const debs: VerifyContext['debs'] = new Map();
  let kvmBroken = false;
  // a Secure Boot boot showed this host's KVM has no SMM: later ones go straight to TCG (direct boots keep KVM)
  let kvmNoSmm = false;
  return (payload, job) =>
    limit(async () => {
      // its run went away while the boot waited for a slot
      if (job.signal.aborted) throw new KfarmError('INTERRUPTED', `the boot of ${payload.kernel} was dropped: its run is gone`);
      image ??= ensureVerifyImage(deps.runtime, deps.logger, (line) => deps.logger.info(line));
      kvm ??= kvmUsable();
      const blobs = await deps.blobs.getAll(payload.modules);
      const accel = bootAccel(job.lane, payload.accel);
      const ctx: VerifyContext = {
        options: {
          accel,
          cmdline: payload.cmdline,
          timeoutSec: payload.timeoutSec,
          ...(payload.secureBoot ? { secureBoot: true, mokCerts: payload.mokCerts ?? [] } : {}),
          stateDir: deps.stateDir,
          runtime: deps.runtime,
          logger: deps.logger,
          say: () => undefined,
          ...(deps.hostname ? { ownerLabels: { [LABEL_HOST]: deps.hostname, [LABEL_PID]: String(process.pid), [LABEL_INSTANCE]: currentInstance() } } : {}),
          // this worker stopping, or the run that queued the boot gone
          signal: deps.signal ? AbortSignal.any([deps.signal, job.signal]) : job.signal,
        },
        image: await image,
        debs,
        kvmBroken,
        kvmNoSmm,
        kvm: await kvm,
      };
      const { load, console, wallMs } = await verifyKernel(ctx, {
        kernel: payload.kernel,
        arch: payload.arch,
        release: payload.release,
        debianArch: payload.debianArch,
        modules: payload.modules.map((m) => ({ installLocation: m.installLocation, fileName: m.fileName, data: blobs.get(m.sha256) ?? Buffer.alloc(0) })),
      });
      if (ctx.kvmBroken && !kvmBroken) deps.onKvmBroken?.();
      kvmBroken ||= ctx.kvmBroken;
      kvmNoSmm ||= ctx.kvmNoSmm === true;
      // this worker is stopping: the boot was cut short, which is no verdict; the job is tried again
      if (deps.signal?.aborted) throw new KfarmError('INTERRUPTED', `the boot of ${payload.kernel} was interrupted: this worker is stopping`);
      const result: VerifyResult = {
        schemaVersion: 1,
        load: {
          verdict: load.verdict,
          ...(load.reason ? { reason: load.reason as NonNullable<VerifyResult['load']['reason']> } : {}),
          ...(load.firstError ? { firstError: load.firstError } : {}),
          ...(load.accel ? { accel: load.accel } : {}),
          ...(load.bootMs !== undefined ? { bootMs: load.bootMs } : {}),
          ...(load.loadMs !== undefined ? { loadMs: load.loadMs } : {}),
          ...(load.secureBoot !== undefined ? { secureBoot: load.secureBoot } : {}),
          ...(load.lockdown ? { lockdown: load.lockdown } : {}),
        },
        ...(console ? { console: await deps.blobs.put(Buffer.from(console, 'utf8')) } : {}),
        ...(wallMs !== undefined ? { wallMs } : {}),
        worker: deps.worker,
      };
      return result;
    });
}
