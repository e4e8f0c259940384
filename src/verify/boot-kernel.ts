import { randomBytes } from 'node:crypto';
import { constants, readFileSync } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { packTar } from '../executor/archive.js';
import type { ContainerRuntime } from '../executor/runtime.js';
import { packageRoot } from '../paths.js';
import { cleanText, TEXT_LIMITS } from '../util/clean-text.js';
import { parseConsole, type BootOutcome, type BootStatus } from './console-parse.js';
import { planBoot, type Accel, type GuestModule } from './initramfs-plan.js';

/** the console kept per boot; a module that floods printk is cut here */
export const CONSOLE_LIMIT_BYTES = 4 * 1024 * 1024;
/** the verify container's limits: /work holds the kernel's module tree (~0.5 GiB unpacked) and QEMU's guest */
const LIMITS = { memoryBytes: 3 * 1024 ** 3, pids: 256, cpus: 1 };
const TMPFS = { '/work': 'rw,nosuid,nodev,noexec,size=2g,nr_inodes=200000', '/tmp': 'rw,nosuid,nodev,noexec,size=64m,nr_inodes=1000' };
export const VERIFY_LABEL = 'io.kfarm.verify-boot';

let bootScript: string | undefined;
const script = () => (bootScript ??= readFileSync(path.join(packageRoot, 'src', 'verify', 'boot.sh'), 'utf8'));

/** /dev/kvm when this process can open it read-write: a guest gets hardware virtualization. */
export async function kvmUsable(): Promise<boolean> {
  return access('/dev/kvm', constants.R_OK | constants.W_OK).then(
    () => true,
    () => false,
  );
}

export interface BootRequest {
  kernel: string;
  /** uname -m of the kernel: x86_64, aarch64 */
  arch: string;
  accel: Accel;
  kernelDeb: Buffer;
  modules: readonly GuestModule[];
  cmdline: string;
  timeoutSec: number;
  /** OVMF in Secure Boot mode -> shim -> GRUB -> the signed kernel (kernelDeb), mokCerts enrolled as MOKs */
  secureBoot?: boolean;
  mokCerts?: readonly string[];
  signal?: AbortSignal;
  /** who runs the boot (host, pid, instance): a process killed outright leaves a container the next kfarm on the host reaps */
  ownerLabels?: Record<string, string>;
}

export interface BootResult extends BootOutcome {
  accel: Accel;
  /** the console as captured (cleaned, line breaks kept) */
  console: string;
  wallMs: number;
}

/**
 * One boot: a hardened container (no network, read-only root, tmpfs, no capabilities, pids and
 * memory capped) of the verify image runs boot.sh, which unpacks the kernel, builds the
 * initramfs and runs QEMU under a hard timeout. The module only ever runs in the guest kernel.
 */
export async function bootKernel(runtime: ContainerRuntime, image: string, request: BootRequest): Promise<BootResult> {
  const nonce = randomBytes(8).toString('hex');
  const plan = planBoot({ ...request, nonce });
  const input = await packTar(plan.files.map((f) => ({ path: f.path, type: 'file' as const, mode: 0o644, data: f.data })));
  const chunks: Buffer[] = [];
  let bytes = 0;
  const started = Date.now();
  const outcome = await runtime.runIsolated({
    image,
    cmd: ['bash', '-c', script()],
    // root in the container, without capabilities: it owns the tmpfs and can open /dev/kvm (0660 root:kvm)
    user: '0:0',
    capAdd: [],
    ...(request.accel === 'kvm' ? { devices: ['/dev/kvm'] } : {}),
    env: plan.env,
    labels: { ...request.ownerLabels, [VERIFY_LABEL]: '1' },
    stdin: input,
    outputLimitBytes: 4096,
    tmpfs: TMPFS,
    limits: LIMITS,
    // boot.sh's own timeout ends QEMU first; this one ends a container that got stuck before it
    timeoutMs: (request.timeoutSec + 120) * 1000,
    onLog: (chunk) => {
      if (bytes < CONSOLE_LIMIT_BYTES) chunks.push(chunk.subarray(0, CONSOLE_LIMIT_BYTES - bytes));
      bytes += chunk.length;
    },
    ...(request.signal ? { signal: request.signal } : {}),
  });
  const wallMs = Date.now() - started;
  const statusLine = outcome.output?.toString('utf8') ?? '';
  const word = /^status=([a-z-]+)/.exec(statusLine)?.[1];
  const status: BootStatus =
    outcome.stoppedBy === 'timeout'
      ? 'timeout'
      : word === 'ran' || word === 'timeout' || word === 'no-kernel-image' || word === 'no-modules' || word === 'no-firmware'
        ? word
        : 'boot-failed';
  const raw = Buffer.concat(chunks).toString('utf8');
  const console = cleanText(raw, CONSOLE_LIMIT_BYTES, { newlines: true }) + (bytes > CONSOLE_LIMIT_BYTES ? '\n[kfarm] console cut here\n' : '');
  const parsed = parseConsole(raw, nonce, status, { secureBoot: request.secureBoot === true });
  if (parsed.verdict === 'not-verified' && !parsed.firstError) {
    // QEMU's own complaint (no SMM under this KVM, a missing device) says more than boot-failed
    const qemu = /^qemu-system-[a-z0-9_]+: .+$/m.exec(raw)?.[0];
    if (qemu) parsed.firstError = cleanText(qemu, TEXT_LIMITS.firstError);
  }
  if (status === 'no-firmware') {
    // boot.sh's own stdout names the Debian package that holds the missing file
    const pkg = /package=([a-z0-9][a-z0-9.+-]{1,63})/.exec(statusLine)?.[1] ?? 'unknown';
    parsed.firstError = `the verify image ${image} lacks the Secure Boot firmware or tools of Debian package ${pkg}`;
  }
  return { ...parsed, accel: request.accel, console, wallMs };
}
