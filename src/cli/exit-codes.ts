import type { ErrorCode } from '../errors/kfarm-error.js';

/** Exit statuses of the kfarm CLI (README: "Exit status"). */
export const EXIT = {
  ok: 0,
  /** the build ran, and at least one kernel failed */
  kernelsFailed: 1,
  /** bad input: options, source dir, dkms.conf, a selector that matches nothing */
  badInput: 2,
  /** the environment: Docker, Redis, images */
  environment: 3,
  /** anything unexpected (a bug: please report it with the log) */
  internal: 4,
  interrupted: 130,
} as const;

export function exitCodeFor(code: ErrorCode): number {
  switch (code) {
    case 'SOURCE_NOT_FOUND':
    case 'DKMS_CONF_MISSING':
    case 'DKMS_CONF_INVALID':
    case 'KERNEL_SELECTOR_EMPTY':
    case 'BAD_OPTION':
    case 'UNSAFE_ARCHIVE':
      return EXIT.badInput;
    case 'NO_IMAGES':
    case 'IMAGE_NOT_FOUND':
    case 'IMAGE_BUILD_FAILED':
    case 'DOCKER_UNREACHABLE':
    case 'DOCKER_ERROR':
    case 'NO_WORKERS':
    case 'REDIS_UNREACHABLE':
    case 'REDIS_START_FAILED':
      return EXIT.environment;
    case 'INTERRUPTED':
      return EXIT.interrupted;
    default:
      return EXIT.internal;
  }
}
