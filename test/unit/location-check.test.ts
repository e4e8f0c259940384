import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { parseDriverResult } from '../../src/dkms/driver-result.js';
import { isValidLocation } from '../../src/dkms/names.js';
import { kernelRecordSchema } from '../../src/job/job-payload.js';
import { kernelRecord } from '../helpers/kernel-record.js';

/**
 * BUILT_MODULE_LOCATION / DEST_MODULE_LOCATION come from builds, report.json (`kfarm pack`),
 * job payloads and verify jobs: a value anyone who writes those can choose. The check used to
 * be one regex, `^(?:[A-Za-z0-9_+-][A-Za-z0-9_.+-]*\/?)*$`, which backtracks exponentially on a
 * value that does not match (29 characters: 26 s). Each call here runs under a V8 watchdog
 * (`vm` timeout interrupts a running regex), so a regression fails in a bounded time instead
 * of hanging the suite.
 */
const BOUND_MS = 250;

function within<T>(fn: () => T): T {
  return vm.runInNewContext('fn()', { fn }, { timeout: BOUND_MS }) as T;
}

/** values that do not match, each built to make a backtracking matcher try every split */
const HOSTILE: Array<[string, string]> = [
  ['30 letters then !', `${'a'.repeat(30)}!`],
  ['300 letters then !', `${'a'.repeat(300)}!`],
  ['3000 letters then !', `${'a'.repeat(3000)}!`],
  ['a dot-run then a space', `${'a.'.repeat(1500)} `],
  ['1500 segments then !', `${'a/'.repeat(1500)}!`],
  ['dashes then a NUL', `${'-'.repeat(2000)}\u0000`],
  ['letters then //', `${'a'.repeat(2000)}//`],
  ['letters then a .. segment', `${'ab'.repeat(1000)}/..`],
  ['100,000 letters (over PATH_MAX)', 'a'.repeat(100_000)],
  ['a million segments then !', `${'a/'.repeat(1_000_000)}!`],
];

describe('isValidLocation is linear: long hostile values are refused within a time bound', () => {
  it.each(HOSTILE)('%s', (_, value) => {
    expect(within(() => isValidLocation(value))).toBe(false);
  });

  it('all of them together take well under a second', () => {
    const started = performance.now();
    for (const [, value] of HOSTILE) within(() => isValidLocation(value));
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('long good values are accepted as quickly', () => {
    expect(within(() => isValidLocation('abc/'.repeat(1000)))).toBe(true);
    expect(within(() => isValidLocation(`${'a'.repeat(4000)}/b.c`))).toBe(true);
  });

  it('what comes back from a build: a hostile DEST_MODULE_LOCATION is refused as bad-conf, quickly', () => {
    const line = `module\t0\thello\t\thello\t/extra/${'a'.repeat(3000)}!\t/updates/dkms\tyes`;
    const result = within(() => parseDriverResult(`verdict\tbuilt\npackage_name\thello\npackage_version\t1\n${line}\n`));
    expect(result.verdict).toBe('failed');
    expect(result.reason).toBe('bad-conf');
    expect(result.message).toMatch(/^DEST_MODULE_LOCATION\[0\] /);
  });

  it("what a worker's record says: a hostile install location fails the record schema, quickly", () => {
    const log = { sha256: '0'.repeat(64), size: 0 };
    const record = kernelRecord({ log, modules: [{ builtName: 'hello', destName: 'hello', destLocation: '/extra', installLocation: `/updates/${'a'.repeat(1000)}!` }] });
    expect(within(() => kernelRecordSchema.safeParse(record).success)).toBe(false);
    const good = kernelRecord({ log, modules: [{ builtName: 'hello', destName: 'hello', destLocation: '/extra', installLocation: '/updates/dkms' }] });
    expect(kernelRecordSchema.safeParse(good).success).toBe(true);
  });
});

describe('isValidLocation: what it accepts and refuses', () => {
  it.each([
    ['', true],
    ['src', true],
    ['src/', true],
    ['src/sub/dir', true],
    ['a.b+c_d-e/x', true],
    ['updates-dkms-test', true],
    ['/abs', false],
    ['/', false],
    ['src//x', false],
    ['src//', false],
    ['.', false],
    ['./', false],
    ['..', false],
    ['a/./b', false],
    ['a/../b', false],
    ['.hidden', false],
    ['a b', false],
    ['a\\b', false],
    ['a\nb', false],
    ['é', false],
  ])('%j -> %s', (value, expected) => {
    expect(isValidLocation(value)).toBe(expected);
  });
});
