import { z } from 'zod';
import { buildOptionsSchema } from '../config/build-options.js';

/**
 * What crosses the queue. Versioned: a worker refuses a payload it does not understand
 * instead of guessing.
 */
export const jobPayloadSchema = z.object({
  schemaVersion: z.literal(1),
  sourceSha256: z.string().regex(/^[0-9a-f]{64}$/),
  kernel: z.string().min(1),
  arch: z.string().min(1),
  image: z.string().min(1),
  imageRef: z.string().min(1),
  imageId: z.string().min(1),
  driverSha256: z.string(),
  options: buildOptionsSchema,
  /** the coordinator run that asked; labels containers, never part of the job id */
  buildId: z.string(),
});
export type JobPayload = z.infer<typeof jobPayloadSchema>;

const artifactSchema = z.object({ sha256: z.string(), size: z.number() });

export const kernelRecordSchema = z.object({
  schemaVersion: z.literal(1),
  kernel: z.string(),
  arch: z.string(),
  image: z.string(),
  verdict: z.enum(['built', 'excluded', 'failed']),
  reason: z.string().optional(),
  message: z.string().optional(),
  firstError: z.string().optional(),
  /** what dkms.conf said for this kernel; absent when the build ended before reading it */
  packageName: z.string().optional(),
  packageVersion: z.string().optional(),
  /** bad-conf: `add` when dkms.conf failed before the name and version were settled (the module's fault) */
  failedStage: z.enum(['add', 'build']).optional(),
  modules: z.array(
    z.object({
      builtName: z.string(),
      destName: z.string(),
      destLocation: z.string(),
      installLocation: z.string(),
      file: artifactSchema.optional(),
    }),
  ),
  makeInvocation: z.string().optional(),
  /** optional: records stored by older versions have none */
  warnings: z.array(z.string()).optional(),
  makeLog: artifactSchema.optional(),
  log: artifactSchema,
  logTruncated: z.boolean(),
  durationMs: z.number(),
  worker: z.string(),
  /** which try produced it: 1 unless an earlier one hit an infrastructure error */
  attempt: z.number().int().positive().optional(),
  finishedAt: z.string(),
  /** false for verdicts that may change on a rerun (timeout, infrastructure): never reused */
  cacheable: z.boolean(),
});
export type KernelRecord = z.infer<typeof kernelRecordSchema>;
export type Artifact = z.infer<typeof artifactSchema>;

/** Every blob a record refers to: its log, its make log and its module files. */
export function recordArtifacts(record: KernelRecord): Artifact[] {
  return [record.log, ...(record.makeLog ? [record.makeLog] : []), ...record.modules.flatMap((m) => (m.file ? [m.file] : []))];
}
