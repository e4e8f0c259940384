import { describe, expect, it } from 'vitest';
import { median, parseTimesLine, targetLine } from '../../bench/lib/stats.js';

describe('bench stats', () => {
  it('takes the median of odd and even counts', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
  it('says whether a target is met and by how much it is missed', () => {
    expect(targetLine(1.0, 1.1)).toBe('met (1.00x <= 1.10x)');
    expect(targetLine(1.21, 1.1)).toBe('missed by 10% (1.21x > 1.10x)');
  });
  it("reads the children's line of bash `times`", () => {
    expect(parseTimesLine('1m2.500s 0m0.250s')).toBeCloseTo(62.75);
    expect(parseTimesLine('garbage')).toBeUndefined();
  });
});
