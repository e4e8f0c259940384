import { createHash } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from './job-key.js';
import { location } from './job-payload.js';
import { MODULE_SUFFIXES } from '../dkms/driver-result.js';
import { ARCH, KERNEL_RELEASE, MODULE_NAME } from '../dkms/names.js';
import { cleanText, TEXT_LIMITS } from '../util/clean-text.js';

/**
 * A boot as a queue job (pure: schemas and routing). Boots go through the same BullMQ machinery
 * as builds, on queues of their own per capability: `<queue>-verify-kvm` is taken only by
 * workers whose /dev/kvm is usable, `<queue>-verify-tcg` by workers that accept software
 * emulation. Both directions are sealed with the farm key and checked here at the border.
 */
/** One kernel's load verification (src/verify/): the kernel booted in QEMU, its modules loaded in depmod's order. */
export interface LoadReport {
  verdict: 'loaded' | 'load-failed' | 'not-verified';
  /** why not loaded / not verified: a stable word (unknown-symbol, version-magic, invalid-format, key-rejected, boot-failed, no-kernel-image, ...) */
  reason?: string;
  /** the first relevant kernel log line of a failure (`hello: Unknown symbol foo (err -2)`) */
  firstError?: string;
  /** kvm or tcg (software emulation, much slower) */
  accel?: 'kvm' | 'tcg';
  bootMs?: number;
  loadMs?: number;
  /** the captured console (kernel log), relative to the out dir */
  log?: string;
  /** `--secure-boot`: what the guest itself read before loading: the firmware's SecureBoot variable is 1 */
  secureBoot?: boolean;
  /** `--secure-boot`: the kernel's lockdown mode as the guest read it (/sys/kernel/security/lockdown) */
  lockdown?: Lockdown;
}

export const LOCKDOWN_MODES = ['none', 'integrity', 'confidentiality'] as const;
export type Lockdown = (typeof LOCKDOWN_MODES)[number];
/** a MOK to enrol before a Secure Boot boot: one X.509 certificate in PEM (public, small) */
export const MOK_CERT_PEM = /^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]{64,8192}-----END CERTIFICATE-----\n$/;

export const VERIFY_LANES = ['kvm', 'tcg'] as const;
export type VerifyLane = (typeof VERIFY_LANES)[number];
export type AccelWanted = 'auto' | VerifyLane;

export const verifyQueueName = (base: string, lane: VerifyLane): string => `${base}-verify-${lane}`;

const SHA256 = /^[0-9a-f]{64}$/;
const FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}$/;
const moduleFile = z
  .string()
  .regex(FILE_NAME, 'not a module file name')
  .refine((v) => MODULE_SUFFIXES.some((s) => v.endsWith(s) && MODULE_NAME.test(v.slice(0, -s.length))), 'not a module file name');
const artifact = z.object({
  sha256: z.string().regex(SHA256, 'not a sha256'),
  size: z
    .number()
    .int()
    .nonnegative()
    .max(512 * 1024 ** 2),
});

export const verifyPayloadSchema = z.object({
  schemaVersion: z.literal(1),
  kernel: z.string().regex(KERNEL_RELEASE, 'not a kernel release'),
  /** uname -m: x86_64, aarch64 */
  arch: z.string().regex(ARCH, 'not an arch'),
  release: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'not a release'),
  debianArch: z.string().regex(ARCH, 'not a Debian arch'),
  modules: z
    .array(artifact.extend({ installLocation: location, fileName: moduleFile }))
    .min(1)
    .max(64),
  cmdline: z
    .string()
    .max(1024)
    .regex(/^[\x20-\x7e]*$/, 'not a printable command line'),
  accel: z.enum(['auto', 'kvm', 'tcg']),
  timeoutSec: z.number().int().positive().max(3600),
  /** one boot per request: a verify job is never shared or reused (its figures are this run's) */
  requestId: z.string().regex(/^[0-9a-f]{16,64}$/),
  /**
   * The coordinator run that queued it: its lease in Redis (verify-queue.ts) says the run is
   * still waiting. A job whose run's lease is gone is dropped, never booted (a dead run's boots
   * must not hold up the next run's).
   */
  run: z.string().regex(/^[0-9a-f]{16,64}$/),
  /** `--secure-boot`: OVMF in Secure Boot mode, shim, GRUB and the kernel's signed image, these certificates enrolled as MOKs */
  secureBoot: z.boolean().optional(),
  mokCerts: z.array(z.string().regex(MOK_CERT_PEM, 'not a PEM certificate')).max(8).optional(),
});
export type VerifyPayload = z.infer<typeof verifyPayloadSchema>;

/** every reason word a boot can give (console-parse.ts, verify-kernel.ts, verify-out-dir.ts); anything else is refused */
export const LOAD_REASONS = [
  'key-rejected',
  'unsigned-rejected',
  'version-magic',
  'unknown-symbol',
  'invalid-format',
  'crashed',
  'insmod-failed',
  'timeout',
  'boot-failed',
  'no-kernel-image',
  'no-modules',
  'no-signed-kernel',
  'no-firmware',
  'secure-boot-off',
  'not-amd64',
] as const;

export const verifyResultSchema = z.object({
  schemaVersion: z.literal(1),
  load: z
    .object({
      verdict: z.enum(['loaded', 'load-failed', 'not-verified']),
      reason: z.enum(LOAD_REASONS).optional(),
      firstError: z
        .string()
        .transform((v) => cleanText(v, TEXT_LIMITS.firstError))
        .optional(),
      accel: z.enum(['kvm', 'tcg']).optional(),
      bootMs: z
        .number()
        .nonnegative()
        .max(24 * 3600_000)
        .optional(),
      loadMs: z
        .number()
        .nonnegative()
        .max(24 * 3600_000)
        .optional(),
      secureBoot: z.boolean().optional(),
      lockdown: z.enum(LOCKDOWN_MODES).optional(),
    })
    .strict(),
  /** the captured console, a blob (cleaned again when the coordinator writes it) */
  console: artifact.optional(),
  wallMs: z
    .number()
    .nonnegative()
    .max(24 * 3600_000)
    .optional(),
  worker: z
    .string()
    .max(256)
    .transform((v) => cleanText(v, 256)),
});
export type VerifyResult = z.infer<typeof verifyResultSchema>;

/** The job id: the payload's hash (its requestId makes it one boot's). */
export function verifyJobId(payload: VerifyPayload): string {
  return createHash('sha256')
    .update(`kfarm-verify-v1\n${canonicalJson(payload)}`)
    .digest('hex');
}

/**
 * The lanes a run may route to: those some live worker consumes (a BullMQ worker connected to
 * the lane's queue) and, with REDIS_URL, that a live worker's advert names (a worker whose KVM
 * showed it cannot boot a guest still drains the KVM lane but stops advertising it).
 */
export function usableLanes(connected: ReadonlySet<VerifyLane>, advertised?: ReadonlySet<VerifyLane>): Set<VerifyLane> {
  return new Set(VERIFY_LANES.filter((lane) => connected.has(lane) && (!advertised || advertised.has(lane))));
}

/**
 * Which queue a boot goes to. `tcg` and `kvm` as asked; `auto` to the KVM lane when a worker
 * that can take it exists (this process's own in local mode, a registered worker's advert with
 * REDIS_URL) and the kernel is of the host's arch (KVM runs only guests of its own arch), or
 * when no worker takes TCG boots (a KVM worker boots what KVM cannot run under TCG itself).
 */
export function routeBoot(accel: AccelWanted, input: { kvmWorker: boolean; tcgWorker: boolean; arch: string; hostArch: string }): VerifyLane {
  if (accel !== 'auto') return accel;
  // a KVM worker boots a foreign-arch kernel under TCG (verifyKernel): better than no worker at all
  if (input.kvmWorker && !input.tcgWorker) return 'kvm';
  return input.kvmWorker && input.arch === input.hostArch ? 'kvm' : 'tcg';
}

/**
 * The accel a worker boots with: on the TCG lane always TCG; on the KVM lane what was asked
 * (`auto` keeps verify's probe: a KVM boot that reaches no init is booted again under TCG).
 */
export const bootAccel = (lane: VerifyLane, accel: AccelWanted): AccelWanted => (lane === 'tcg' ? 'tcg' : accel);

/** `kfarm worker --verify kvm,tcg`, `--verify none`: which lanes to consume. */
export function parseVerifyLanes(value: string): VerifyLane[] {
  const words = value
    .split(',')
    .map((w) => w.trim())
    .filter((w) => w !== '');
  if (words.length === 1 && words[0] === 'none') return [];
  const bad = words.filter((w) => !(VERIFY_LANES as readonly string[]).includes(w));
  if (bad.length > 0 || words.length === 0) throw new Error(`--verify takes kvm, tcg, kvm,tcg or none, not ${JSON.stringify(value)}`);
  return [...new Set(words)] as VerifyLane[];
}

/** The report's load from a checked result: only what the schema let through. */
export function loadFromResult(result: VerifyResult): LoadReport {
  const { load } = result;
  return {
    verdict: load.verdict,
    ...(load.reason ? { reason: load.reason } : {}),
    ...(load.firstError ? { firstError: load.firstError } : {}),
    ...(load.accel ? { accel: load.accel } : {}),
    ...(load.bootMs !== undefined ? { bootMs: load.bootMs } : {}),
    ...(load.loadMs !== undefined ? { loadMs: load.loadMs } : {}),
    ...(load.secureBoot !== undefined ? { secureBoot: load.secureBoot } : {}),
    ...(load.lockdown ? { lockdown: load.lockdown } : {}),
  };
}
