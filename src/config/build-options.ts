import { z } from 'zod';
import { KfarmError } from '../errors/kfarm-error.js';

/**
 * Options that change what a build produces or whether it may finish: they are part of the
 * job id, so two builds that differ here never share a result.
 */
export const buildOptionsSchema = z.object({
  /** wall-clock limit of one kernel's build, seconds (default 1800) */
  timeoutSec: z.number().int().positive().default(1800),
  /** memory limit of a build container, MiB (default 4096) */
  memoryMiB: z.number().int().min(256).default(4096),
  /** process limit of a build container (default 1024): stops fork bombs */
  pids: z.number().int().min(64).default(1024),
  /** CPUs a build container may use (default 2) */
  cpus: z.number().positive().default(2),
  /**
   * scratch space of a build container, MiB (default 2048). Its root filesystem is read-only;
   * every writable path is a tmpfs capped in bytes and in inodes (64 per MiB): the build tree
   * /var/lib/dkms gets --disk, /tmp and /var/tmp a quarter of it each (see
   * worker/container-mounts.ts). A build that fills one ends `disk-full`, naming it.
   * tmpfs is memory: what a build writes there counts against --memory as well.
   */
  diskMiB: z.number().int().min(64).default(2048),
  /** make -j for dkms's make line; 0 means no limit (default: `nproc` in the container, as dkms) */
  makeJobs: z.number().int().min(0).optional(),
  /**
   * `dkms --directive NAME=value`: exported after dkms.conf is read, so it overrides that
   * directive (index 0 of an array) on every kernel
   */
  /**
   * `/etc/dkms/<module>[-<version>[-<kernel>[-<arch>]]].conf` (and 3.2's `<module>--<kernel>[-<arch>].conf`):
   * sourced after dkms.conf, as on a host that has them
   */
  dkmsOverrides: z
    .array(z.object({ name: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.+~-]{0,200}\.conf$/, 'not an /etc/dkms file name'), text: z.string().max(65536) }))
    .max(64)
    .optional(),
  /** how built modules are compressed: auto = as the target kernel's own modules are (Debian 6.12: xz) */
  compress: z.enum(['auto', 'none', 'xz', 'zstd']).optional(),
  /** SOURCE_DATE_EPOCH: the date dkms writes into make.log, so that rebuilds are byte-identical */
  sourceDateEpoch: z.number().int().nonnegative().optional(),
  directives: z
    .array(
      z
        .string()
        .max(4096)
        .regex(/^[A-Za-z_][A-Za-z0-9_]*=[^\n\r\0]*$/, 'must be NAME=value (a shell variable name, one line)'),
    )
    .max(64)
    .optional(),
  /** size cap of one kernel's build log, bytes (default 16 MiB); the rest is dropped */
  logLimitBytes: z
    .number()
    .int()
    .positive()
    .default(16 * 1024 * 1024),
  /** size cap of what one build may hand back (modules + make.log), bytes (default 256 MiB) */
  outputLimitBytes: z
    .number()
    .int()
    .positive()
    .default(256 * 1024 * 1024),
});

export type BuildOptions = z.infer<typeof buildOptionsSchema>;

/** The CLI flag of each option, so that a bad value is reported the way the user typed it. */
const FLAGS: Partial<Record<keyof BuildOptions, string>> = {
  timeoutSec: '--timeout',
  memoryMiB: '--memory',
  diskMiB: '--disk',
  cpus: '--cpus',
  directives: '--directive',
};

export function buildOptions(input: Partial<BuildOptions> = {}): BuildOptions {
  const parsed = buildOptionsSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const key = String(issue.path[0]) as keyof BuildOptions;
    return `${FLAGS[key] ?? key}: ${issue.message.replace(/^Number must be/, 'must be')}`;
  });
  throw new KfarmError('BAD_OPTION', `bad build option: ${problems.join('; ')}`, {
    hint: 'See `kfarm build --help` for the options and their defaults.',
  });
}
