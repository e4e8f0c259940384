import { describe, expect, it } from 'vitest';
import { buildOptions } from '../../src/config/build-options.js';
import { isKfarmError } from '../../src/errors/kfarm-error.js';

describe('buildOptions', () => {
  it('fills the defaults', () => {
    expect(buildOptions()).toMatchObject({ timeoutSec: 1800, memoryMiB: 4096, diskMiB: 2048, pids: 1024, cpus: 2 });
  });

  it('rejects a bad value as BAD_OPTION naming the CLI flag', () => {
    let caught: unknown;
    try {
      buildOptions({ memoryMiB: 100, diskMiB: 1 });
    } catch (err) {
      caught = err;
    }
    expect(isKfarmError(caught, 'BAD_OPTION')).toBe(true);
    expect((caught as Error).message).toContain('--memory: must be greater than or equal to 256');
    expect((caught as Error).message).toContain('--disk: must be greater than or equal to 64');
  });
});
