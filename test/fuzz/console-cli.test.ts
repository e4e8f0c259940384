import fc from 'fast-check';
import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { parseConsole, type BootStatus } from '../../src/verify/console-parse.js';
import { parseSelector, selectKernels } from '../../src/matrix/kernel-selector.js';
import type { KernelTarget } from '../../src/matrix/kernel-target.js';
import { positiveInt } from '../../src/cli/options.js';
import { KfarmError } from '../../src/errors/kfarm-error.js';
import { RUNS, withinMs } from './runs.js';

const NONCE = 'n0nce42';
// eslint-disable-next-line no-control-regex -- the property is that no control character survives
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/;
const STATUSES: BootStatus[] = ['ran', 'timeout', 'no-kernel-image', 'no-modules', 'boot-failed'];

/** console lines: the guest's init markers (with this boot's nonce or a forged one), kernel lines, refusals, noise */
const consoleLine = (nonce: fc.Arbitrary<string>) =>
  fc.oneof(
    fc
      .tuple(
        nonce,
        fc.constantFrom(
          'boot 1.5',
          'insmod hello 2.0',
          'insmod hello',
          'result hello 0',
          'result hello 1',
          'result hello 999',
          'done 3.25',
          'done x',
          'boot',
          'insmod \x1b[2Jevil 1',
        ),
        fc.constantFrom('', ' ', '\t', '\r'),
      )
      .map(([n, m, tail]) => `@@kfarm-${n} ${m}${tail}`),
    fc.constantFrom(
      '[    1.234567] hello: Unknown symbol foo (err -2)',
      '[ 2.000000] Kernel panic - not syncing: x',
      'insmod: ERROR: could not insert module: Invalid module format',
      'kfarm-verify: booting',
      '',
    ),
    fc.string({ unit: 'binary', maxLength: 40 }),
  );

describe('fuzz: QEMU console, selectors, CLI values', () => {
  it('parseConsole never throws; its outcome is well formed; without this boot nonce the guest cannot make it say loaded', () => {
    fc.assert(
      fc.property(fc.array(consoleLine(fc.constantFrom(NONCE, 'forged', `${NONCE}x`)), { maxLength: 30 }), fc.constantFrom(...STATUSES), (lines, status) => {
        const text = lines.join(fc.sample(fc.constantFrom('\n', '\r\n'), 1)[0] ?? '\n');
        const o = withinMs(200, () => parseConsole(text, NONCE, status));
        expect(['loaded', 'load-failed', 'not-verified']).toContain(o.verdict);
        for (const r of o.results) {
          expect(r.module).not.toMatch(CONTROL);
          expect(r.module.length).toBeLessThanOrEqual(256);
          if (r.status !== undefined) expect(Number.isInteger(r.status) && r.status >= 0 && r.status <= 999).toBe(true);
        }
        if (o.firstError !== undefined) expect(o.firstError).not.toMatch(CONTROL);
        if (o.loadMs !== undefined) expect(o.loadMs).toBeGreaterThanOrEqual(0);
        if (o.verdict === 'loaded') {
          expect(text).toContain(`@@kfarm-${NONCE} done`);
          expect(o.results.length).toBeGreaterThan(0);
          expect(o.results.every((r) => r.status === 0)).toBe(true);
        }
        if (status === 'no-kernel-image' || status === 'no-modules') expect(o.verdict).toBe('not-verified');
        // the same console with the nonce nowhere in it (every marker forged) never verifies
        const forged = parseConsole(text.split(`@@kfarm-${NONCE} `).join('@@kfarm-forged '), NONCE, status);
        expect(forged.verdict).not.toBe('loaded');
      }),
      { numRuns: RUNS },
    );
  });

  it('parseConsole is linear on long hostile lines (< 200 ms for 20k characters)', () => {
    const long = fc
      .tuple(
        fc.constantFrom(`@@kfarm-${NONCE} boot`, ' a', `@@kfarm-${NONCE} insmod `, '[ 1.000000] ', ' \t', "version magic '"),
        fc.nat({ max: 4000 }),
        fc.constantFrom('', '  x', '\t!', ' '),
      )
      .map(([s, n, end]) => s.repeat(n) + end);
    fc.assert(
      fc.property(long, fc.constantFrom(...STATUSES), (text, status) => {
        withinMs(200, () => parseConsole(text, NONCE, status));
      }),
      { numRuns: Math.min(RUNS, 200) },
    );
  });

  const targets: KernelTarget[] = [
    ...['6.1.0-28-amd64', '6.1.0-28-cloud-amd64', '6.12.117+deb12-amd64', '6.1.0-0.deb11.52-arm64', '5.10.0-30-rt-amd64', 'a'.repeat(60) + '-amd64'].map((kernel, i) => ({
      kernel,
      arch: kernel.endsWith('arm64') ? 'aarch64' : 'x86_64',
      image: i % 2 ? 'debian-12' : 'debian-13',
      imageRef: 'kfarm/debian-12:latest',
      imageId: 'sha256:x',
    })),
    // the kernels to come: pre-release suites, experimental's without an ABI number
    ...[
      ['7.2.13+deb14-amd64', 'debian-unstable'],
      ['7.2.12+deb14-arm64', 'debian-testing'],
      ['7.3-amd64', 'debian-experimental'],
      ['7.3-arm64-16k', 'debian-experimental'],
    ].map(([kernel, image]) => ({ kernel: kernel!, arch: kernel!.includes('arm64') ? 'aarch64' : 'x86_64', image: image!, imageRef: `kfarm/${image!}:x`, imageId: 'sha256:y' })),
  ];
  const selectorWord = fc.oneof(
    fc.constantFrom(
      'all',
      'new',
      '!new',
      '6.1.*',
      '*-amd64',
      'debian-12:6.12.*',
      'arch:arm64',
      'arch:',
      'release:debian-12',
      'release:',
      'next',
      '!next',
      'stage:released',
      '!stage:pre-release',
      'stage:',
      'stage:beta',
      '7.3-*',
      '!6.1.0-28-amd64',
      ':',
      '!',
      '?',
      '*',
      '[a-z]',
      '(a+)+$',
      '\\',
    ),
    fc.array(fc.constantFrom('*', '?', 'a', '-', '.', '6'), { maxLength: 40 }).map((p) => p.join('')),
    fc.string({ maxLength: 12 }),
  );
  it('selectors: parsed or refused with BAD_OPTION; selecting is refused (KfarmError) or a subset of what is available, sorted and without duplicates; fast on glob-heavy terms', () => {
    fc.assert(
      fc.property(fc.array(selectorWord, { maxLength: 6 }), fc.constantFrom(',', ' ', ', '), (words, sep) => {
        const selector = words.join(sep);
        try {
          parseSelector(selector);
        } catch (err) {
          expect((err as KfarmError).code).toBe('BAD_OPTION');
        }
        let chosen: KernelTarget[];
        try {
          chosen = withinMs(50, () => selectKernels(selector, targets, { lastBuilt: [] }));
        } catch (err) {
          if ((err as Error).message.startsWith('took ')) throw err;
          expect(err).toBeInstanceOf(KfarmError);
          return;
        }
        expect(chosen.length).toBeGreaterThan(0);
        for (const t of chosen) expect(targets).toContain(t);
        expect(new Set(chosen.map((t) => `${t.kernel}/${t.arch}`)).size).toBe(chosen.length);
      }),
      { numRuns: RUNS },
    );
  });

  it('a kernel glob selects exactly what the same glob as a regex would (differential, on globs short enough for the regex)', () => {
    const glob = fc.array(fc.constantFrom('*', '?', '6', '.', '1', '-', 'a', 'amd64', '0', 'd', 'e', 'b'), { minLength: 1, maxLength: 8 }).map((p) => p.join(''));
    const reference = (g: string) =>
      new RegExp(
        `^${g
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '.*')
          .replace(/\?/g, '.')}$`,
      );
    fc.assert(
      fc.property(glob, (g) => {
        const want = targets.filter((t) => reference(g).test(t.kernel)).map((t) => t.kernel);
        let got: string[] = [];
        try {
          got = selectKernels(g, targets).map((t) => t.kernel);
        } catch (err) {
          expect((err as KfarmError).code).toBe('KERNEL_SELECTOR_EMPTY');
        }
        expect(new Set(got)).toEqual(new Set(want));
      }),
      { numRuns: RUNS },
    );
  });

  it('positiveInt: a positive safe whole number, or commander InvalidArgumentError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.integer().map(String), fc.constantFrom('1e3', '0x10', ' 5 ', '', '-0', '1.0', 'Infinity', '9007199254740993')), (v) => {
        let n: number;
        try {
          n = positiveInt(v);
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidArgumentError);
          return;
        }
        expect(Number.isInteger(n) && n > 0).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });
});
