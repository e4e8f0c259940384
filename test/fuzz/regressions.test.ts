import { describe, expect, it } from 'vitest';
import { parseDriverResult } from '../../src/dkms/driver-result.js';

/** Counterexamples fast-check found (test/fuzz), kept as plain cases. */
describe('fuzz regressions', () => {
  it('driver result: an unknown module suffix after a bad PACKAGE_VERSION does not carry the unchecked version out', () => {
    // found by dkms.test.ts: the early return for the suffix skipped the name checks
    const r = parseDriverResult('package_version\t\t\nmodule_suffix');
    expect(r.verdict).toBe('failed');
    expect(r.reason).toBe('driver-error');
    expect(r.packageVersion).toBeUndefined();
    expect(parseDriverResult('package_name\t../x\nmodule_suffix\t.tar').packageName).toBeUndefined();
    expect(parseDriverResult('package_name\thello\nmodule_suffix\t.tar').packageName).toBe('hello');
  });
});

describe('fuzz regressions: Debian versions', () => {
  it('digit runs past 2^53 and past a double (309 digits) still compare by value', async () => {
    // found by archive-index.test.ts: Number() made these equal (and 309 digits gave NaN)
    const { compareDebianVersions } = await import('../../src/archive/debian-version.js');
    expect(compareDebianVersions('9007199254740993', '9007199254740992')).toBeGreaterThan(0);
    const big = '1'.repeat(400);
    expect(compareDebianVersions(`${big}0`, big)).toBeGreaterThan(0);
    expect(compareDebianVersions(`${big}a`, `${big}b`)).toBeLessThan(0);
    expect(compareDebianVersions('1.007', '1.7')).toBe(0);
  });
});
