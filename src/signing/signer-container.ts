import type { ContainerRuntime } from '../executor/runtime.js';
import { KfarmError } from '../errors/kfarm-error.js';
import { TEXT_LIMITS, cleanText } from '../util/clean-text.js';
import { SIGN_WORKDIR, signScript } from './sign-script.js';

/** uid/gid of nobody in Debian images: sign-file needs no privilege */
const SIGNER_USER = '65534:65534';
const MiB = 1024 * 1024;
const LOG_LIMIT = 64 * 1024;

export interface SignerRun {
  runtime: ContainerRuntime;
  image: string;
  kernel: string;
  mode: 'probe' | 'sign';
  stdin: Buffer;
  /** the tmpfs the input is unpacked into, in MiB */
  workMiB: number;
  outputLimitBytes: number;
  labels?: Record<string, string> | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * One fresh container of the kernel's image that never ran a module's Makefile: no network,
 * no capability, read-only root, as nobody; the only writable place is a tmpfs that vanishes
 * with it. Its environment, command line and labels hold no secret: the key comes on stdin.
 */
export async function runSigner(run: SignerRun): Promise<{ exitCode: number; output: Buffer | undefined; log: string }> {
  const chunks: Buffer[] = [];
  let logBytes = 0;
  const outcome = await run.runtime.runIsolated({
    image: run.image,
    cmd: ['bash', '-c', signScript(), 'sign.sh', run.mode, run.kernel],
    user: SIGNER_USER,
    capAdd: [],
    env: { LANG: 'C.UTF-8', HOME: SIGN_WORKDIR, PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
    labels: { ...(run.labels ?? {}), 'io.kfarm.role': 'signer' },
    stdin: run.stdin,
    outputLimitBytes: run.outputLimitBytes,
    tmpfs: {
      [SIGN_WORKDIR]: `rw,noexec,nosuid,nodev,size=${run.workMiB}m,nr_inodes=4096,uid=65534,gid=65534,mode=0700`,
      '/tmp': 'rw,noexec,nosuid,nodev,size=16m,nr_inodes=1024,mode=1777',
    },
    limits: { memoryBytes: (256 + run.workMiB) * MiB, pids: 64, cpus: 1 },
    timeoutMs: 120_000,
    onLog: (chunk) => {
      if (logBytes < LOG_LIMIT) chunks.push(chunk);
      logBytes += chunk.length;
    },
    ...(run.signal ? { signal: run.signal } : {}),
  });
  const log = Buffer.concat(chunks).toString('utf8');
  if (outcome.stoppedBy === 'aborted') throw new KfarmError('INTERRUPTED', `signing for ${run.kernel} interrupted`, { context: { kernel: run.kernel } });
  if (outcome.stoppedBy === 'timeout') {
    throw new KfarmError('CONTAINER_FAILED', `the signing container for ${run.kernel} ran longer than 120 s and was killed`, {
      context: { kernel: run.kernel, image: run.image },
      hint: lastLines(log),
    });
  }
  return { exitCode: outcome.exitCode, output: outcome.output, log };
}

/** the end of a signer's log, printable, for a hint */
export function lastLines(log: string): string {
  const tail = log.trim().split('\n').slice(-5).join(' | ');
  return cleanText(`Its log: ${tail || '(empty)'}`, TEXT_LIMITS.message);
}
