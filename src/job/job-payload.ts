import { z } from 'zod';
import { buildOptionsSchema } from '../config/build-options.js';
import { MODULE_SUFFIXES } from '../dkms/driver-result.js';
import { REASON_NAMES, VERDICT_NAMES } from '../dkms/verdicts.js';
import { ARCH, KERNEL_RELEASE, MODULE_NAME, MODULE_VERSION, isValidLocation } from '../dkms/names.js';
import { cleanText, TEXT_LIMITS } from '../util/clean-text.js';

/**
 * What crosses the queue, both ways. Versioned: a worker refuses a payload it does not
 * understand instead of guessing. Both directions are borders (Redis may be shared, a worker
 * may run on a host the coordinator does not control): every name that can end up in a host
 * path must match its rule in dkms/names.ts, every string is capped, and free text is cleaned
 * of control characters. A record that does not fit is refused whole (the queue treats it as
 * unreadable), never repaired.
 */
const SHA256 = /^[0-9a-f]{64}$/;
/** an image's name: the folder under images/ (debian-12) */
const IMAGE_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** a Docker reference: [registry[:port]/]repo[:tag][@sha256:...] */
const IMAGE_REF = /^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$/;
const IMAGE_ID = /^[A-Za-z0-9][A-Za-z0-9:._-]{0,199}$/;

const kernel = z.string().regex(KERNEL_RELEASE, 'not a kernel release');
const arch = z.string().regex(ARCH, 'not an arch');
const image = z.string().regex(IMAGE_NAME, 'not an image name');
const moduleName = z.string().regex(MODULE_NAME, 'not a module name');
const moduleVersion = z.string().regex(MODULE_VERSION, 'not a module version');
/** DEST_MODULE_LOCATION and friends (also a verify job's install location): relative below their root (a leading / is how dkms.conf writes them) */
export const location = z
  .string()
  .max(1024)
  .refine(
    (v) =>
      isValidLocation(
        v
          .split('/')
          .filter((p) => p !== '' && p !== '.')
          .join('/'),
      ),
    'not a safe module location',
  );
/** free text from a build: cleaned and capped, never refused (it is only ever shown) */
const text = (max: number) => z.string().transform((v) => cleanText(v, max));

export const jobPayloadSchema = z.object({
  schemaVersion: z.literal(1),
  sourceSha256: z.string().regex(SHA256),
  kernel,
  arch,
  image,
  imageRef: z.string().regex(IMAGE_REF, 'not an image reference'),
  imageId: z.string().regex(IMAGE_ID, 'not an image id'),
  driverSha256: z.string().regex(SHA256),
  options: buildOptionsSchema,
  /** the coordinator run that asked; labels containers, never part of the job id */
  buildId: z.string().max(1024),
  /**
   * BUILD_DEPENDS: the modules of the same run this one needs, each with the Module.symvers its
   * build on this kernel wrote. Part of the job id: a changed dependency rebuilds the dependent.
   * Absent for modules without BUILD_DEPENDS (their job ids stay what they were).
   */
  dependsOn: z
    .array(z.object({ name: moduleName, version: moduleVersion, symvers: z.object({ sha256: z.string().regex(SHA256), size: z.number().int().nonnegative() }).optional() }))
    .max(32)
    .optional(),
});
export type JobPayload = z.infer<typeof jobPayloadSchema>;

const artifactSchema = z.object({ sha256: z.string().regex(SHA256, 'not a sha256'), size: z.number().int().nonnegative() });

export const kernelRecordSchema = z.object({
  schemaVersion: z.literal(1),
  kernel,
  arch,
  image,
  verdict: z.enum(VERDICT_NAMES),
  /** exactly the list in dkms/verdicts.ts: every word ever stored is in it (words are only added) */
  reason: z.enum(REASON_NAMES, { message: 'not a reason' }).optional(),
  message: text(TEXT_LIMITS.message).optional(),
  firstError: text(TEXT_LIMITS.firstError).optional(),
  /** what dkms.conf said for this kernel; absent when the build ended before reading it */
  packageName: moduleName.optional(),
  packageVersion: moduleVersion.optional(),
  /** bad-conf: `add` when dkms.conf failed before the name and version were settled (the module's fault) */
  failedStage: z.enum(['add', 'build']).optional(),
  modules: z
    .array(
      z.object({
        builtName: moduleName,
        destName: moduleName,
        destLocation: location,
        installLocation: location,
        /** .ko unless compressed as the kernel's own modules are; records of older versions have none */
        suffix: z.enum(MODULE_SUFFIXES).optional(),
        file: artifactSchema.optional(),
      }),
    )
    .max(256),
  makeInvocation: text(TEXT_LIMITS.line).optional(),
  /** optional: records stored by older versions have none */
  warnings: z.array(text(TEXT_LIMITS.warning)).max(20).optional(),
  makeLog: artifactSchema.optional(),
  /** the kernel's .config as dkms 2.8 and 3.0 keep it in the log dir */
  kernelConfig: artifactSchema.optional(),
  /** the Module.symvers the build wrote: what a module with BUILD_DEPENDS on this one links against */
  symvers: artifactSchema.optional(),
  log: artifactSchema,
  logTruncated: z.boolean(),
  durationMs: z.number().nonnegative(),
  worker: text(255),
  /** which try produced it: 1 unless an earlier one hit an infrastructure error */
  attempt: z.number().int().positive().optional(),
  finishedAt: z.string().max(64),
  /** false for verdicts that may change on a rerun (timeout, infrastructure): never reused */
  cacheable: z.boolean(),
});
/** A record as the coordinator uses it (after the schema's cleaning). */
export type KernelRecord = z.output<typeof kernelRecordSchema>;
export type Artifact = z.infer<typeof artifactSchema>;

/** Every blob a record refers to: its log, its make log, its Module.symvers and its module files. */
export function recordArtifacts(record: KernelRecord): Artifact[] {
  return [
    record.log,
    ...(record.makeLog ? [record.makeLog] : []),
    ...(record.kernelConfig ? [record.kernelConfig] : []),
    ...(record.symvers ? [record.symvers] : []),
    ...record.modules.flatMap((m) => (m.file ? [m.file] : [])),
  ];
}
