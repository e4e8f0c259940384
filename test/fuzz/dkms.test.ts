import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDriverResult } from '../../src/dkms/driver-result.js';
import { isValidLocation, isValidName, type NameKind } from '../../src/dkms/names.js';
import { firstErrorLine } from '../../src/dkms/make-log.js';
import { RUNS, withinMs } from './runs.js';

/** Characters that matter to these parsers: separators, path parts, control bytes, regex bait. */
const bait = fc.constantFrom('\t', '\n', '/', '.', '..', '-', '~', ':', ' ', '\r', '\0', '\x1b', 'a', '_', '+', '\\', 'é', '*** ', 'error:', 'make: ', '[kfarm] ');
const hostile = fc.array(fc.oneof(bait, fc.string({ unit: 'binary', maxLength: 8 })), { maxLength: 60 }).map((a) => a.join(''));
const KEYS = [
  'verdict',
  'reason',
  'message',
  'package_name',
  'package_version',
  'failed_stage',
  'make_command',
  'make_invocation',
  'make_exit',
  'exclusion',
  'module_suffix',
  'autoinstall',
  'warning',
  'module',
  'other',
];
/** a result file line by line: a known key with hostile tab-separated values */
const resultFile = fc
  .array(fc.tuple(fc.constantFrom(...KEYS), fc.array(hostile, { maxLength: 8 })), { maxLength: 30 })
  .map((lines) => lines.map(([k, vs]) => [k, ...vs].join('\t')).join('\n'));
// eslint-disable-next-line no-control-regex -- the property is that no control character survives
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/;

describe('fuzz: dkms result file and names', () => {
  it('parseDriverResult never throws; every name it keeps is a usable one, or the result is a bad-conf failure with no modules', () => {
    fc.assert(
      fc.property(fc.oneof(resultFile, fc.string({ unit: 'binary' })), (text) => {
        const r = parseDriverResult(text);
        if (r.packageName !== undefined) expect(isValidName('module name', r.packageName)).toBe(true);
        if (r.packageVersion !== undefined) expect(isValidName('module version', r.packageVersion)).toBe(true);
        for (const m of r.modules) {
          expect(isValidName('module name', m.builtName)).toBe(true);
          expect(isValidName('module name', m.destName)).toBe(true);
          for (const loc of [m.builtLocation, m.destLocation, m.installLocation]) {
            expect(loc.split('/')).not.toContain('..');
            expect(loc).not.toContain('\\');
          }
        }
        // free text is cleaned: no control characters travel into reports and terminals
        for (const t of [r.message, r.makeCommand, r.makeInvocation, r.exclusion, r.autoinstall, ...r.warnings]) if (t !== undefined) expect(t).not.toMatch(CONTROL);
        expect(r.warnings.length).toBeLessThanOrEqual(20);
      }),
      { numRuns: RUNS },
    );
  });

  it('names: every check is linear (< 50 ms on 10k characters) and a valid location has no absolute start and no . or .. segment', () => {
    const long = fc
      .tuple(fc.string({ maxLength: 40 }), fc.constantFrom('a', 'a/', '/', '.', 'a.', '-', '~'), fc.nat({ max: 10_000 }))
      .map(([head, rep, n]) => head + rep.repeat(n) + '!');
    const kinds: NameKind[] = ['module name', 'module version', 'kernel release', 'arch'];
    fc.assert(
      fc.property(fc.oneof(long, hostile), (value) => {
        for (const kind of kinds) withinMs(50, () => isValidName(kind, value));
        const ok = withinMs(50, () => isValidLocation(value));
        if (ok && value !== '') {
          expect(value.startsWith('/')).toBe(false);
          const segs = value.replace(/\/$/, '').split('/');
          for (const s of segs) expect(['', '.', '..']).not.toContain(s);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('names: a valid name is one segment (no /, no leading . or -) of at most 128 characters', () => {
    const kinds: NameKind[] = ['module name', 'module version', 'kernel release', 'arch'];
    fc.assert(
      fc.property(fc.constantFrom(...kinds), fc.oneof(hostile, fc.stringMatching(/^[A-Za-z0-9_.+~-]{1,70}$/)), (kind, value) => {
        if (!isValidName(kind, value)) return;
        expect(value).not.toMatch(/[/\\\s\0]/);
        expect(value).not.toMatch(/^[.-]/);
        expect(value.length).toBeLessThanOrEqual(128);
      }),
      { numRuns: RUNS },
    );
  });

  it('firstErrorLine: never throws, answers one of the log lines (trimmed), linear on long hostile lines', () => {
    const line = fc.oneof(
      hostile,
      fc.constantFrom(
        'make[1]: *** [Makefile:3: all] Error 2',
        'x.c:1:2: error: no',
        '/kfarm/driver.sh: line 5:   193 Killed   tail /dev/zero',
        'ld: foo: undefined reference to `x`',
      ),
      fc.tuple(fc.constantFrom('make: ', '/kfarm/driver.sh: line 1: 1 ', 'a:1: *** ', ' ', 'error:', 'x'), fc.nat({ max: 5000 })).map(([s, n]) => s.repeat(n)),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 30 }), (lines) => {
        const log = lines.join('\n');
        const found = withinMs(200, () => firstErrorLine(log));
        if (found === undefined) return;
        expect(found).not.toContain('\n');
        expect(found).toBe(found.trim());
      }),
      { numRuns: RUNS },
    );
  });
});
