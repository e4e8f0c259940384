import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { KfarmError, describeError } from '../errors/kfarm-error.js';
import type { ContainerRuntime } from '../executor/runtime.js';
import type { LoadReport } from '../job/verify-job.js';
import { cleanText, TEXT_LIMITS } from '../util/clean-text.js';
import { bootKernel, kvmUsable, type BootResult } from './boot-kernel.js';
import type { Accel, GuestModule } from './initramfs-plan.js';
import { kernelDeb } from './kernel-deb.js';
import { ensureVerifyImage } from './verify-image.js';

/**
 * The worker side of load verification: one kernel booted with its modules, in this process
 * (a verify worker's job, verify-worker.ts). The coordinator side, which reads an out dir and
 * queues the boots, is coordinator/verify-out-dir.ts; it only imports this file's options and defaults, so
 * the worker (loaded by coordinator/farm-session.ts) never imports the coordinator back.
 */

export type AccelChoice = 'auto' | Accel;

export interface VerifyOptions {
  accel: AccelChoice;
  /** extra kernel command line (module.sig_enforce=1) */
  cmdline: string;
  /** only these kernels (uname -r); others keep whatever load report they had */
  kernels?: readonly string[];
  /** hard limit of one boot (QEMU is killed past it) */
  timeoutSec?: number;
  stateDir: string;
  runtime: ContainerRuntime;
  logger: Logger;
  say: (line: string) => void;
  /** `--junit <file>`: the extra copy of junit.xml, written again with the load testcases */
  junit?: string;
  signal?: AbortSignal;
  /** boots at once in this process's worker (local mode); default from the machine's cores and free memory */
  concurrency?: number;
  /** labels naming this process on each boot container (worker/build-worker.ts reapOrphans removes those of a process that is gone) */
  ownerLabels?: Record<string, string>;
  /** `--secure-boot`: boot as a Secure Boot fleet does (OVMF, shim, GRUB, the signed kernel), mokCerts enrolled as MOKs */
  secureBoot?: boolean;
  /** PEM certificates; the coordinator's default is the build's signing certificate (signing-cert.der in the out dir) */
  mokCerts?: readonly string[];
}

/** a boot under TCG takes seconds (measured: 5-10 s for Debian's 6.1 and 6.12); this is far past it */
export const DEFAULT_BOOT_TIMEOUT_SEC = 300;
/** under `auto`, a KVM boot that shows no init this soon is retried under TCG (nested hosts where KVM cannot run a Linux guest) */
const KVM_PROBE_TIMEOUT_SEC = 20;
/** each boot's container may use up to 3 GiB (its tmpfs and the guest) */
const BOOT_MEMORY_BYTES = 3.5 * 1024 ** 3;

export function bootConcurrency(): number {
  return Math.max(1, Math.min(os.cpus().length, Math.floor(os.freemem() / BOOT_MEMORY_BYTES)));
}

export interface VerifyContext {
  options: VerifyOptions;
  image: string;
  /** kernel debs by release/arch/kernel, fetched once */
  debs: Map<string, Promise<Buffer | undefined>>;
  /** set once a KVM boot under `auto` showed KVM cannot boot a guest here: later boots go straight to TCG */
  kvmBroken: boolean;
  kvm: boolean;
  /** set once a Secure Boot boot showed this host's KVM has no System Management Mode (nested KVM): OVMF's Secure Boot build needs it */
  kvmNoSmm?: boolean;
}

export async function verifyContext(options: VerifyOptions): Promise<VerifyContext> {
  const kvm = await kvmUsable();
  if (options.accel === 'kvm' && !kvm) {
    throw new KfarmError('BAD_OPTION', '--accel kvm was asked for, but /dev/kvm is missing or not usable by this user', {
      hint: 'Add the user to the kvm group, pass /dev/kvm into this container, or use --accel tcg (software emulation, slower).',
    });
  }
  const image = await ensureVerifyImage(options.runtime, options.logger, options.say);
  return { options, image, debs: new Map(), kvmBroken: false, kvm };
}

/** One kernel's load check: its exact kernel from the archive, booted with these modules. */
export async function verifyKernel(
  ctx: VerifyContext,
  target: { kernel: string; arch: string; release: string; debianArch: string; modules: readonly GuestModule[] },
): Promise<{ load: LoadReport; console: string; wallMs?: number }> {
  const signed = ctx.options.secureBoot === true;
  if (signed && target.arch !== 'x86_64') {
    return {
      load: { verdict: 'not-verified', reason: 'not-amd64', firstError: `--secure-boot boots amd64 kernels only (OVMF, shim and GRUB for x86_64), not ${target.arch}` },
      console: '',
    };
  }
  const key = `${target.release}/${target.debianArch}/${target.kernel}${signed ? '/signed' : ''}`;
  let deb = ctx.debs.get(key);
  if (!deb) {
    deb = kernelDeb({
      kernel: target.kernel,
      release: target.release,
      debianArch: target.debianArch,
      debDir: path.join(ctx.options.stateDir, 'verify', 'debs'),
      index: { cacheDir: path.join(ctx.options.stateDir, 'archive'), logger: ctx.options.logger },
      signed,
    }).then((found) => (found ? readFile(found.file) : undefined));
    ctx.debs.set(key, deb);
  }
  let data: Buffer | undefined;
  try {
    data = await deb;
  } catch (err) {
    return { load: { verdict: 'not-verified', reason: 'no-kernel-image', firstError: cleanText(describeError(err), TEXT_LIMITS.firstError) }, console: '' };
  }
  if (!data && signed)
    return {
      load: {
        verdict: 'not-verified',
        reason: 'no-signed-kernel',
        firstError: `the ${target.release} archive has no signed build of ${target.kernel} (linux-image-${target.kernel} from linux-signed-${target.debianArch}) for Secure Boot`,
      },
      console: '',
    };
  if (!data)
    return {
      load: {
        verdict: 'not-verified',
        reason: 'no-kernel-image',
        firstError: `the ${target.release} archive has no linux-image-${target.kernel}(-unsigned) for ${target.debianArch}`,
      },
      console: '',
    };
  const { options } = ctx;
  const timeoutSec = options.timeoutSec ?? DEFAULT_BOOT_TIMEOUT_SEC;
  const hostArch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
  const kvmFits = ctx.kvm && target.arch === hostArch && options.accel !== 'tcg' && !(options.accel === 'auto' && (ctx.kvmBroken || (signed && ctx.kvmNoSmm)));
  const boot = (accel: Accel, limit: number) =>
    bootKernel(options.runtime, ctx.image, {
      kernel: target.kernel,
      arch: target.arch,
      accel,
      kernelDeb: data,
      modules: target.modules,
      cmdline: options.cmdline,
      timeoutSec: limit,
      ...(signed ? { secureBoot: true, mokCerts: options.mokCerts ?? [] } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.ownerLabels ? { ownerLabels: options.ownerLabels } : {}),
    });
  let result: BootResult;
  let note = '';
  if (kvmFits) {
    result = await boot('kvm', options.accel === 'auto' ? Math.min(KVM_PROBE_TIMEOUT_SEC, timeoutSec) : timeoutSec);
    const noSmm = signed && /System Management Mode not supported/.test(result.console);
    if (options.accel === 'auto' && noSmm) {
      // OVMF's Secure Boot build needs SMM, which a nested KVM may lack: that says nothing about KVM for direct boots
      ctx.kvmNoSmm = true;
      note = "[kfarm] this host's KVM has no System Management Mode, which OVMF's Secure Boot build needs; booted under TCG\n";
      result = await boot('tcg', timeoutSec);
    } else if (options.accel === 'auto' && result.verdict === 'not-verified' && result.results.length === 0 && (result.reason === 'boot-failed' || result.reason === 'timeout')) {
      // no init under KVM (the kernel never reached it): this host's KVM cannot run the guest
      ctx.kvmBroken = true;
      options.logger.warn({ kernel: target.kernel, reason: result.reason }, 'a KVM boot reached no init: booting under TCG from now on');
      note = `[kfarm] under KVM the guest reached no init (${result.reason ?? ''}) in ${Math.round(result.wallMs / 1000)} s; booted again under TCG\n`;
      result = await boot('tcg', timeoutSec);
    }
  } else {
    result = await boot('tcg', timeoutSec);
  }
  const load: LoadReport = {
    verdict: result.verdict,
    ...(result.reason ? { reason: result.reason } : {}),
    ...(result.firstError ? { firstError: result.firstError } : {}),
    accel: result.accel,
    ...(result.bootMs !== undefined ? { bootMs: result.bootMs } : {}),
    ...(result.loadMs !== undefined ? { loadMs: result.loadMs } : {}),
    ...(result.secureBoot !== undefined ? { secureBoot: result.secureBoot } : {}),
    ...(result.lockdown ? { lockdown: result.lockdown } : {}),
  };
  return { load, console: note + result.console, wallMs: result.wallMs };
}
