import { readFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { isValidLocation, isValidName } from '../../src/dkms/names.js';
import { packageRoot } from '../../src/paths.js';

/**
 * driver.sh checks names with bash regexes inside the container; they must agree with
 * names.ts. The check functions are cut out of the script and run in the host's bash.
 */
const script = readFileSync(path.join(packageRoot, 'src', 'dkms', 'driver.sh'), 'utf8');
const checks = script.slice(script.indexOf('readonly NAME_RE='), script.indexOf('quote() {'));

function bashSays(fn: string, value: string): boolean {
  const out = execFileSync('bash', ['-c', `${checks}\n${fn} "$1" && echo yes || echo no`, 'check', value], { encoding: 'utf8' });
  return out.trim() === 'yes';
}

const NAMES = ['hello', 'nvidia-current', 'r8168', 'a.b+c_d', '../x', '../../../../tmp/x', 'a/b', '.hidden', '-dash', 'a\nb', 'a\tb', 'a\u001bb', 'a b', '', 'x'.repeat(64), 'x'.repeat(65), 'é'];
const VERSIONS = ['1.0.0', '2:1.0~rc1', '1.0/2', '..', 'v1\n'];
const LOCATIONS = ['', 'src/', 'src/sub', 'src/../..', '../', '/abs', './', 'a/./b', 'a b/'];

describe('driver.sh name checks agree with names.ts', () => {
  it.each(NAMES)('module name %j', (v) => expect(bashSays('valid_name', v)).toBe(isValidName('module name', v)));
  it.each(VERSIONS)('module version %j', (v) => expect(bashSays('valid_version', v)).toBe(isValidName('module version', v)));
  it.each(LOCATIONS)('location %j', (v) => expect(bashSays('valid_location', v)).toBe(isValidLocation(v)));
});
