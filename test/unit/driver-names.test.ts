import { readFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { isValidLocation, isValidName } from '../../src/dkms/names.js';
import { packageRoot } from '../../src/paths.js';

/**
 * driver.sh checks names inside the container; they must agree with names.ts, and both must
 * give the fixed answers below (so the test fails when both sides are broken the same way).
 * The check functions are cut out of the script and run in the host's bash.
 */
const script = readFileSync(path.join(packageRoot, 'src', 'dkms', 'driver.sh'), 'utf8');
const checks = script.slice(script.indexOf('readonly NAME_RE='), script.indexOf('quote() {'));

function bashSays(fn: string, value: string): boolean {
  const out = execFileSync('bash', ['-c', `${checks}\n${fn} "$1" && echo yes || echo no`, 'check', value], { encoding: 'utf8', timeout: 10_000 });
  return out.trim() === 'yes';
}

const NAMES: Array<[string, boolean]> = [
  ['hello', true],
  ['nvidia-current', true],
  ['r8168', true],
  ['a.b+c_d', true],
  ['_x', true],
  ['x'.repeat(64), true],
  ['../x', false],
  ['../../../../tmp/x', false],
  ['a/b', false],
  ['.hidden', false],
  ['-dash', false],
  ['+plus', false],
  ['a\nb', false],
  ['a\tb', false],
  ['a\u001bb', false],
  ['a b', false],
  ['', false],
  ['x'.repeat(65), false],
  ['é', false],
  ['a~b', false],
];
const VERSIONS: Array<[string, boolean]> = [
  ['1.0.0', true],
  ['1.0~rc1', true],
  ['2024.01.01+git1', true],
  ['x'.repeat(64), true],
  ['2:1.0~rc1', false],
  ['1.0/2', false],
  ['..', false],
  ['v1\n', false],
  ['', false],
  ['-1', false],
  ['x'.repeat(65), false],
];
/** BUILT_MODULE_LOCATION: relative to the build dir */
const LOCATIONS: Array<[string, boolean]> = [
  ['', true],
  ['src/', true],
  ['src/sub', true],
  ['a.b+c_d-e/x/', true],
  ['src/../..', false],
  ['../', false],
  ['/abs', false],
  ['./', false],
  ['a/./b', false],
  ['a b/', false],
  ['a//b', false],
  ['.git/', false],
  [`${'a'.repeat(3000)}!`, false],
  [`${'a/'.repeat(1500)}!`, false],
  ['a'.repeat(5000), false],
];
/**
 * DEST_MODULE_LOCATION: what dkms 2.8.4, 3.0.10 and 3.2.2 accept (read_conf: a value that
 * starts with /kernel, /updates or /extra, `/updates-dkms-test` included), except what leaves
 * the module tree or is not made of name characters.
 */
const DEST_LOCATIONS: Array<[string, boolean]> = [
  ['/extra', true],
  ['/extra/', true],
  ['/updates', true],
  ['/updates/dkms', true],
  ['/kernel/drivers/net', true],
  ['/updates-dkms-test', true],
  ['/kernelx', true],
  ['/extras/x', true],
  ['/extra//x', true],
  ['/kernel/./x', true],
  ['/kernel/../../etc', false],
  ['/extra/..', false],
  ['/updates/x/../../..', false],
  ['/usr', false],
  ['/lib/modules', false],
  ['extra', false],
  ['', false],
  ['/Extra', false],
  ['/extra/a b', false],
  ['/extra/.hidden', false],
  ['/extra\n', false],
  [`/extra/${'a'.repeat(3000)}!`, false],
];

/** test names: long values as their start and length */
const named = (cases: Array<[string, boolean]>) => cases.map(([v, ok]) => [v.length > 40 ? `${v.slice(0, 20)}... (${v.length} chars)` : v, v, ok] as const);

describe('driver.sh and names.ts: fixed answers, and both agree', () => {
  it.each(NAMES)('module name %j -> %s', (v, ok) => {
    expect(isValidName('module name', v)).toBe(ok);
    expect(bashSays('valid_name', v)).toBe(ok);
  });
  it.each(VERSIONS)('module version %j -> %s', (v, ok) => {
    expect(isValidName('module version', v)).toBe(ok);
    expect(bashSays('valid_version', v)).toBe(ok);
  });
  it.each(named(LOCATIONS))('location %j -> %s', (_, v, ok) => {
    expect(isValidLocation(v)).toBe(ok);
    expect(bashSays('valid_location', v)).toBe(ok);
  });
  it.each(named(DEST_LOCATIONS))('DEST_MODULE_LOCATION %j -> %s', (_, v, ok) => {
    expect(bashSays('valid_dest_location', v)).toBe(ok);
  });
});
