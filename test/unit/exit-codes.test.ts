import { describe, expect, it } from 'vitest';
import { EXIT, exitCodeFor } from '../../src/cli/exit-codes.js';
import type { ErrorCode } from '../../src/errors/kfarm-error.js';

/**
 * Every ErrorCode, listed at run time. The type assertion below fails `tsc` when a code is
 * added to ErrorCode and not here, so this list cannot fall behind.
 */
const ALL = [
  'SOURCE_NOT_FOUND',
  'DKMS_CONF_MISSING',
  'DKMS_CONF_INVALID',
  'KERNEL_SELECTOR_EMPTY',
  'NO_IMAGES',
  'IMAGE_NOT_FOUND',
  'IMAGE_BUILD_FAILED',
  'DOCKER_UNREACHABLE',
  'DOCKER_ERROR',
  'NO_WORKERS',
  'REDIS_UNREACHABLE',
  'REDIS_START_FAILED',
  'CONTAINER_FAILED',
  'UNSAFE_ARCHIVE',
  'OUTPUT_TOO_LARGE',
  'SOURCE_TOO_LARGE',
  'IMAGE_MISMATCH',
  'RECORD_REJECTED',
  'FARM_KEY_MISSING',
  'COMMAND_FAILED',
  'BAD_OPTION',
  'PUBLISH_REFUSED',
  'JOB_FAILED',
  'BLOB_MISSING',
  'INTERRUPTED',
  'ARCHIVE_UNVERIFIED',
  'FILE_SYSTEM',
  'STATE_CORRUPT',
  'STATE_TOO_NEW',
] as const satisfies readonly ErrorCode[];
type Missing = Exclude<ErrorCode, (typeof ALL)[number]>;
const everyCodeListed: [Missing] extends [never] ? true : Missing = true;

describe('exit statuses', () => {
  it('maps every error code to 2 (bad input), 3 (environment) or 130 (interrupted), never 4', () => {
    expect(everyCodeListed).toBe(true);
    for (const code of ALL) expect([EXIT.badInput, EXIT.environment, EXIT.interrupted], code).toContain(exitCodeFor(code));
  });

  it('maps the codes the README names to their documented status', () => {
    expect(exitCodeFor('BAD_OPTION')).toBe(2);
    expect(exitCodeFor('PUBLISH_REFUSED')).toBe(2);
    expect(exitCodeFor('SOURCE_NOT_FOUND')).toBe(2);
    expect(exitCodeFor('SOURCE_TOO_LARGE')).toBe(2);
    expect(exitCodeFor('DKMS_CONF_INVALID')).toBe(2);
    expect(exitCodeFor('KERNEL_SELECTOR_EMPTY')).toBe(2);
    expect(exitCodeFor('NO_IMAGES')).toBe(3);
    expect(exitCodeFor('DOCKER_UNREACHABLE')).toBe(3);
    expect(exitCodeFor('REDIS_UNREACHABLE')).toBe(3);
    expect(exitCodeFor('BLOB_MISSING')).toBe(3);
    expect(exitCodeFor('OUTPUT_TOO_LARGE')).toBe(3);
    expect(exitCodeFor('ARCHIVE_UNVERIFIED')).toBe(3);
    expect(exitCodeFor('FILE_SYSTEM')).toBe(3);
    expect(exitCodeFor('STATE_CORRUPT')).toBe(3);
    expect(exitCodeFor('INTERRUPTED')).toBe(130);
  });
});
