import { describe, expect, it } from 'vitest';
import { nothingVerified, nothingVerifiedText } from '../../src/cli/nothing-verified.js';
import type { KernelReport } from '../../src/report/report.js';

const row = (kernel: string, load?: KernelReport['load']): KernelReport => ({ kernel, ...(load ? { load } : {}) }) as KernelReport;

describe('a load check that verified nothing', () => {
  it('is nothing verified when every row is not-verified or unchecked, and not once one row loaded or failed to load', () => {
    expect(nothingVerified([row('a', { verdict: 'not-verified', reason: 'excluded' }), row('b', { verdict: 'not-verified', reason: 'boot-failed' })])).toBe(true);
    expect(nothingVerified([row('a')])).toBe(true);
    expect(nothingVerified([])).toBe(true);
    expect(nothingVerified([row('a', { verdict: 'not-verified', reason: 'timeout' }), row('b', { verdict: 'loaded' })])).toBe(false);
    // a module the kernel refuses was verified: it is a load failure (exit 1 for that reason), not "nothing"
    expect(nothingVerified([row('a', { verdict: 'load-failed', reason: 'unknown-symbol' })])).toBe(false);
  });
  it('says why, counted by reason, and how to accept it', () => {
    const text = nothingVerifiedText([
      row('a', { verdict: 'not-verified', reason: 'boot-failed' }),
      row('b', { verdict: 'not-verified', reason: 'boot-failed' }),
      row('c', { verdict: 'not-verified', reason: 'excluded' }),
    ]);
    expect(text).toBe('no kernel was verified (3 row(s) not-verified: 2 boot-failed, 1 excluded): exit 1. Pass --allow-unverified to accept a run that loaded nothing.');
  });
});
