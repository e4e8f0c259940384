import { describe, expect, it } from 'vitest';
import { defaultConcurrency } from '../../src/config/concurrency.js';

const GiB = 1024 ** 3;

describe('defaultConcurrency', () => {
  it('is one more than the cores when memory allows', () => {
    expect(defaultConcurrency(2, 20 * GiB)).toBe(3);
    expect(defaultConcurrency(16, 64 * GiB)).toBe(17);
  });

  it('is bounded by free memory, about 1 GiB a build', () => {
    expect(defaultConcurrency(16, 6.5 * GiB)).toBe(6);
  });

  it('is never below 1, however little is free or however odd the core count', () => {
    expect(defaultConcurrency(2, 0.2 * GiB)).toBe(1);
    expect(defaultConcurrency(0, 8 * GiB)).toBe(2);
  });

  it('reads this machine when given nothing', () => {
    const n = defaultConcurrency();
    expect(Number.isInteger(n)).toBe(true);
    expect(n).toBeGreaterThanOrEqual(1);
  });
});
