import { describe, expect, it } from 'vitest';
import { estimateRemainingMs, progressLine, shortDuration } from '../../src/cli/progress-estimate.js';

describe('estimateRemainingMs', () => {
  it('has no estimate until something finished', () => {
    expect(estimateRemainingMs(0, 180, 60_000)).toBeUndefined();
  });
  it('is the pace so far times what is left', () => {
    expect(estimateRemainingMs(12, 180, 123_000)).toBe(Math.round((123_000 / 12) * 168));
    expect(estimateRemainingMs(1, 3, 10_000)).toBe(20_000);
  });
  it('has nothing left to estimate once all finished, and refuses nonsense', () => {
    expect(estimateRemainingMs(180, 180, 1000)).toBeUndefined();
    expect(estimateRemainingMs(2, 1, 1000)).toBeUndefined();
    expect(estimateRemainingMs(1, 3, Number.NaN)).toBeUndefined();
    expect(estimateRemainingMs(1, 3, -5)).toBeUndefined();
  });
});

describe('progressLine', () => {
  it('says done, running, queued, failed, elapsed and what is left', () => {
    expect(progressLine({ done: 12, running: 2, queued: 166, failed: 1, total: 180, elapsedMs: 123_000 })).toBe(
      '12/180 done · 2 running · 166 queued · 1 failed · 2 min 3 s elapsed · ~28 min 42 s left',
    );
  });
  it('leaves out the estimate before the first kernel finished', () => {
    expect(progressLine({ done: 0, running: 2, queued: 1, failed: 0, total: 3, elapsedMs: 4_400 })).toBe('0/3 done · 2 running · 1 queued · 0 failed · 4 s elapsed');
  });
  it('rounds durations to seconds, minutes and hours', () => {
    expect([shortDuration(0), shortDuration(59_400), shortDuration(60_000), shortDuration(3_725_000)]).toEqual(['0 s', '59 s', '1 min 0 s', '1 h 2 min']);
  });
});
