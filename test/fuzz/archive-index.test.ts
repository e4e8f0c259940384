import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { keepStanzas, parseStanzas } from '../../src/archive/deb822.js';
import { parseReleaseFile } from '../../src/archive/release-file.js';
import { compareDebianVersions } from '../../src/archive/debian-version.js';
import { headersPackages, parseDepends } from '../../src/archive/headers-packages.js';
import { RUNS, withinMs } from './runs.js';

const fieldName = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,12}$/);
/** a single-line value as a Packages file holds one: no line break, no edge whitespace */
const value = fc.string({ maxLength: 30 }).map((s) => s.replace(/[\r\n]/g, ' ').trim());
const continuation = fc.array(
  value.filter((v) => v !== ''),
  { maxLength: 3 },
);
const stanza = fc.uniqueArray(fc.tuple(fieldName, value, continuation), { minLength: 1, maxLength: 6, selector: ([k]) => k.toLowerCase() });
const render = (s: ReadonlyArray<readonly [string, string, readonly string[]]>) => s.map(([k, v, more]) => [`${k}: ${v}`, ...more.map((m) => ` ${m}`)].join('\n')).join('\n');
const expected = (s: ReadonlyArray<readonly [string, string, readonly string[]]>) => new Map(s.map(([k, v, more]) => [k.toLowerCase(), [v, ...more].join('\n')]));

async function* linesOf(text: string): AsyncIterable<string> {
  for (const l of text.split('\n')) yield l;
}

describe('fuzz: deb822, Release, Packages, Debian versions', () => {
  it('parseStanzas never throws on any text, is linear, and keys are lower-case without a colon', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 300 }),
          fc.nat({ max: 20_000 }).map((n) => 'a:'.repeat(n) + '\n \n'.repeat(n)),
        ),
        (text) => {
          const stanzas = withinMs(200, () => parseStanzas(text));
          for (const s of stanzas) {
            expect(s.size).toBeGreaterThan(0);
            for (const k of s.keys()) {
              expect(k).toBe(k.toLowerCase());
              expect(k).not.toContain(':');
            }
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('parseStanzas round-trips rendered stanzas (fields, continuation lines, CRLF)', () => {
    fc.assert(
      fc.property(fc.array(stanza, { maxLength: 5 }), fc.boolean(), (stanzas, crlf) => {
        let text = stanzas.map(render).join('\n\n');
        if (crlf) text = text.replace(/\n/g, '\r\n');
        const parsed = parseStanzas(text);
        expect(parsed).toEqual(stanzas.map(expected));
      }),
      { numRuns: RUNS },
    );
  });

  it('keepStanzas keeps exactly the stanzas whose Package passes, byte for byte', async () => {
    const pkgStanza = fc
      .tuple(fc.stringMatching(/^[a-z0-9][a-z0-9.+-]{0,20}$/), stanza)
      .map(([pkg, rest]) => [['Package', pkg, []] as const, ...rest.filter(([k]) => k.toLowerCase() !== 'package')]);
    await fc.assert(
      fc.asyncProperty(fc.array(pkgStanza, { maxLength: 6 }), fc.func(fc.boolean()), async (stanzas, keep) => {
        const text = stanzas.map(render).join('\n\n');
        const kept = await keepStanzas(linesOf(text), keep);
        const want = stanzas.filter((s) => keep(s[0]?.[1] ?? ''));
        expect(kept).toBe(want.length > 0 ? `${want.map(render).join('\n\n')}\n` : '');
      }),
      { numRuns: RUNS },
    );
  });

  it('parseReleaseFile never throws; every index entry it keeps has a SHA256 and a size; signed and unsigned round-trip', () => {
    const entry = fc.tuple(fc.stringMatching(/^[0-9a-f]{64}$/), fc.nat(), fc.stringMatching(/^[A-Za-z0-9_./-]{1,40}$/));
    fc.assert(
      fc.property(fc.uniqueArray(entry, { maxLength: 8, selector: (e) => e[2] }), fc.boolean(), fc.string({ unit: 'binary', maxLength: 200 }), (entries, signed, noise) => {
        const body = `Codename: bookworm\nDate: Sat, 01 Jan 2000 00:00:00 UTC\nSHA256:\n${entries.map(([h, n, f]) => ` ${h} ${n} ${f}`).join('\n')}\n`;
        const text = signed ? `-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n${body}-----BEGIN PGP SIGNATURE-----\nxx\n-----END PGP SIGNATURE-----\n` : body;
        const r = parseReleaseFile(text);
        expect(r.codename).toBe('bookworm');
        expect(new Map([...r.sha256].map(([f, v]) => [f, [v.sha256, v.size]]))).toEqual(new Map(entries.map(([h, n, f]) => [f, [h, n]])));
        for (const v of parseReleaseFile(noise).sha256.values()) {
          expect(v.sha256).toMatch(/^[0-9a-f]{64}$/);
          expect(Number.isSafeInteger(v.size) || v.size === Infinity || v.size > 0).toBe(true);
        }
      }),
      { numRuns: RUNS },
    );
  });

  const version = fc.oneof(
    fc.stringMatching(/^(?:[0-9]{1,2}:)?[0-9][A-Za-z0-9.+~]{0,10}(?:-[A-Za-z0-9.+~]{1,6})?$/),
    fc.string({ maxLength: 12 }),
    // digit runs longer than a double holds (1e309 is Infinity)
    fc.tuple(fc.constantFrom('1', '9', '0'), fc.nat({ max: 400 }), fc.constantFrom('', '~', 'a', '.1')).map(([d, n, t]) => d.repeat(n) + t),
  );
  const sign = (n: number) => Math.sign(n);

  it('compareDebianVersions is a total preorder: reflexive, antisymmetric, transitive, never NaN', () => {
    fc.assert(
      fc.property(version, version, version, (a, b, c) => {
        expect(compareDebianVersions(a, a)).toBe(0);
        const ab = compareDebianVersions(a, b);
        const bc = compareDebianVersions(b, c);
        const ac = compareDebianVersions(a, c);
        for (const d of [ab, bc, ac]) expect(Number.isNaN(d)).toBe(false);
        expect(sign(ab) + sign(compareDebianVersions(b, a))).toBe(0);
        if (ab <= 0 && bc <= 0) expect(ac).toBeLessThanOrEqual(0);
        if (ab === 0 && bc === 0) expect(ac).toBe(0);
      }),
      { numRuns: RUNS },
    );
  });

  it('compareDebianVersions orders digit runs by value at any length, as dpkg does', () => {
    const digits = fc.stringMatching(/^[0-9]{1,400}$/);
    fc.assert(
      fc.property(digits, digits, fc.constantFrom('', '.1', '~', 'a'), (x, y, tail) => {
        const want = BigInt(x) < BigInt(y) ? -1 : BigInt(x) > BigInt(y) ? 1 : 0;
        expect(sign(compareDebianVersions(x + tail, y + tail))).toBe(want);
      }),
      { numRuns: RUNS },
    );
  });

  it('headersPackages and parseDepends never throw; each package found is named linux-headers-<abi>-<flavour> and fetchable', () => {
    const depends = fc
      .array(
        fc.oneof(
          fc.constantFrom('linux-headers-6.1.0-9-common', 'linux-kbuild-6.1', 'gcc-12', 'linux-image-6.1.0-9-amd64', ' | ', ', ', '(>= 1)', ':any'),
          fc.string({ maxLength: 10 }),
        ),
        { maxLength: 10 },
      )
      .map((p) => p.join(''));
    const pkg = fc.oneof(
      fc.constantFrom('linux-headers-6.1.0-9-amd64', 'linux-headers-6.1.0-9-common', 'linux-headers-amd64'),
      fc.string({ maxLength: 20 }).map((s) => `linux-headers-${s}`),
    );
    const st = fc.record({
      package: pkg,
      depends,
      filename: fc.option(fc.string({ maxLength: 10 })),
      sha256: fc.option(fc.string({ maxLength: 10 })),
      version: fc.option(fc.string({ maxLength: 10 })),
      size: fc.string({ maxLength: 5 }),
    });
    fc.assert(
      fc.property(fc.array(st, { maxLength: 6 }), (records) => {
        const stanzas = records.map((r) => new Map(Object.entries(r).filter((e): e is [string, string] => e[1] !== null)));
        for (const r of records) for (const alts of parseDepends(r.depends)) for (const d of alts) expect(d.name).toMatch(/^[^\s(:]+$/);
        for (const h of headersPackages(stanzas)) {
          expect(h.package).toBe(`linux-headers-${h.kernel}`);
          expect(h.kernel).toBe(`${h.abi}-${h.flavour}`);
          expect(h.flavour).not.toBe('');
          expect(h.filename && h.sha256 && h.version).toBeTruthy();
        }
      }),
      { numRuns: RUNS },
    );
  });
});
