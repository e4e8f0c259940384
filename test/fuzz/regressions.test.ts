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
