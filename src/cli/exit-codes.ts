import type { ErrorCode } from '../errors/kfarm-error.js';

/** Exit statuses of the kfarm CLI (README: "Exit status"). */
export const EXIT = {
  ok: 0,
  /** the build ran, and at least one kernel failed */
  kernelsFailed: 1,
  /** bad input: options, source dir, dkms.conf, a selector that matches nothing */
  badInput: 2,
  /** the environment: Docker, Redis, images, the farm's key */
  environment: 3,
  /** anything unexpected (a bug: please report it with the log) */
  internal: 4,
  interrupted: 130,
} as const;

/**
 * Every error code has its documented status: the switch is exhaustive (the compiler refuses a
 * new code without one), so only a thrown value that is not a KfarmError means "a bug" (4).
 */
export function exitCodeFor(code: ErrorCode): number {
  switch (code) {
    case 'SOURCE_NOT_FOUND':
    case 'SOURCE_TOO_LARGE':
    case 'DKMS_CONF_MISSING':
    case 'DKMS_CONF_INVALID':
    case 'KERNEL_SELECTOR_EMPTY':
    case 'BAD_OPTION':
    case 'PUBLISH_REFUSED':
    case 'UNSAFE_ARCHIVE':
      return EXIT.badInput;
    case 'NO_IMAGES':
    case 'IMAGE_NOT_FOUND':
    case 'IMAGE_MISMATCH':
    case 'IMAGE_BUILD_FAILED':
    case 'DOCKER_UNREACHABLE':
    case 'DOCKER_ERROR':
    case 'NO_WORKERS':
    case 'REDIS_UNREACHABLE':
    case 'REDIS_START_FAILED':
    case 'BLOB_MISSING':
    case 'RECORD_REJECTED':
    case 'FARM_KEY_MISSING':
    case 'CONTAINER_FAILED':
    case 'OUTPUT_TOO_LARGE':
    case 'COMMAND_FAILED':
    case 'ARCHIVE_UNVERIFIED':
    case 'FILE_SYSTEM':
    case 'JOB_FAILED':
    case 'STATE_CORRUPT':
    case 'STATE_TOO_NEW':
      return EXIT.environment;
    case 'INTERRUPTED':
      return EXIT.interrupted;
  }
}
