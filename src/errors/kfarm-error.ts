/**
 * One error type for the whole tool. `code` is stable (scripts and tests match on it),
 * `context` carries what the error is about (module, kernel, image, job id), `hint` says what
 * the user can do about it. Only the CLI turns these into exit codes.
 */
export type ErrorCode =
  | 'SOURCE_NOT_FOUND'
  | 'DKMS_CONF_MISSING'
  | 'DKMS_CONF_INVALID'
  | 'KERNEL_SELECTOR_EMPTY'
  | 'NO_IMAGES'
  | 'IMAGE_NOT_FOUND'
  | 'IMAGE_BUILD_FAILED'
  | 'DOCKER_UNREACHABLE'
  | 'DOCKER_ERROR'
  | 'NO_WORKERS'
  | 'REDIS_UNREACHABLE'
  | 'REDIS_START_FAILED'
  | 'CONTAINER_FAILED'
  | 'UNSAFE_ARCHIVE'
  | 'OUTPUT_TOO_LARGE'
  | 'SOURCE_TOO_LARGE'
  | 'IMAGE_MISMATCH'
  | 'RECORD_REJECTED'
  | 'FARM_KEY_MISSING'
  | 'COMMAND_FAILED'
  | 'ARCHIVE_UNVERIFIED'
  | 'FILE_SYSTEM'
  | 'BAD_OPTION'
  /** a package repository refuses this publish: not a repository kfarm made, a published version with other bytes, a package that is not the file its report lists */
  | 'PUBLISH_REFUSED'
  | 'JOB_FAILED'
  | 'BLOB_MISSING'
  /** the service's state database is damaged or not a database (restore a backup or move it aside) */
  | 'STATE_CORRUPT'
  /** the service's state database was written by a newer kfarm (upgrade kfarm) */
  | 'STATE_TOO_NEW'
  | 'INTERRUPTED';

export type ErrorContext = Record<string, string | number | boolean | undefined>;

export class KfarmError extends Error {
  readonly code: ErrorCode;
  readonly context: ErrorContext;
  readonly hint: string | undefined;
  /**
   * What the failed attempt printed (a build container's log), kept so that a job that runs
   * out of retries still shows the last attempt's log in the report.
   */
  readonly log: Buffer | undefined;

  constructor(code: ErrorCode, message: string, options: { context?: ErrorContext; hint?: string; cause?: unknown; log?: Buffer } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KfarmError';
    this.code = code;
    this.context = options.context ?? {};
    this.hint = options.hint;
    this.log = options.log;
  }
}

export function isKfarmError(err: unknown, code?: ErrorCode): err is KfarmError {
  return err instanceof KfarmError && (code === undefined || err.code === code);
}

/** A short text for any thrown value, for logs and reports. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
