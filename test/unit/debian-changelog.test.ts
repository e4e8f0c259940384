import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';
import { capEntries, entriesBetween, parseDebianChangelog, rebuiltFrom } from '../../src/service/regressions/debian-changelog.js';

/**
 * The Debian changelog parser, on an excerpt of the real changelog.Debian.gz of
 * linux-headers-6.1.0-57-amd64 (kfarm/debian-12:6.1.0-57-amd64): four bookworm-security uploads,
 * three experimental release candidates (the last cut before its trailer) and the "older entries
 * removed" note Debian appends.
 */
const text = readFileSync(path.join(packageRoot, 'test/fixtures/changelog/linux-6.1-excerpt.txt'), 'utf8');

describe('parseDebianChangelog', () => {
  const entries = parseDebianChangelog(text);

  it('reads every entry, newest first, with its version, distribution and urgency', () => {
    expect(entries.map((e) => `${e.package} ${e.version} ${e.distribution} ${e.urgency}`)).toEqual([
      'linux 6.1.174-1 bookworm-security high',
      'linux 6.1.172-1 bookworm-security high',
      'linux 6.1.170-3 bookworm-security high',
      'linux 6.1.170-2 bookworm-security high',
      'linux 6.1~rc8-1~exp1 experimental medium',
      'linux 6.1~rc7-1~exp1 experimental medium',
      'linux 6.1~rc6-1~exp1 experimental medium',
    ]);
  });

  it('reads the trailer: maintainer and date', () => {
    expect(entries[0]).toMatchObject({ maintainer: 'Salvatore Bonaccorso <carnil@debian.org>', date: 'Tue, 26 May 2026 23:29:19 +0200' });
  });

  it('keeps the body lines as written, indentation kept, blank ends removed', () => {
    expect(entries[2]?.body).toEqual(['  * xfrm: esp: ipv4: fix up flags setting', '  * net: Fix icmp host relookup triggering ip_rt_bug (Closes: #1135514)']);
    expect(entries[0]?.body[0]).toBe('  * New upstream stable update:');
    expect(entries[0]?.body.at(-1)).toBe('  * smb: client: reject userspace cifs.spnego descriptions');
    expect(entries[0]?.body).toContain('      (CVE-2026-46300)');
  });

  it('an entry cut before its trailer still counts, and the note at the margin is in no entry', () => {
    const last = entries.at(-1);
    expect(last?.maintainer).toBeUndefined();
    expect(last?.body.at(-1)).toBe('  * [arm64] drivers/perf: Convert CCN_PMU from builtin to a module');
    expect(entries.flatMap((e) => e.body).some((l) => l.includes('Older entries'))).toBe(false);
  });

  it('cleans what the archive wrote: escapes and control characters go, lines are bounded', () => {
    const hostile = `linux (1.0-1) unstable; urgency=low\n\n  * \u001b]0;pwned\u0007red \u001b[31mtext\u202e\u0000 ${'x'.repeat(10_000)}\n\n -- A <a@b>  Mon, 01 Jan 2024 00:00:00 +0000\n`;
    const [entry] = parseDebianChangelog(hostile);
    expect(entry?.body[0]?.startsWith('  * red text ')).toBe(true);
    expect(entry?.body[0]?.length).toBeLessThanOrEqual(4096);
  });

  it('reads several distributions and more key=value pairs, and a header line with CRLF ends', () => {
    const [entry] = parseDebianChangelog(
      'linux (3.2.1-1) unstable experimental; urgency=HIGH, binary-only=yes\r\n\r\n  * x\r\n\r\n -- A <a@b>  Mon, 01 Jan 2024 00:00:00 +0000\r\n',
    );
    expect(entry).toMatchObject({ version: '3.2.1-1', distribution: 'unstable experimental', urgency: 'high', body: ['  * x'] });
  });
});

describe('entriesBetween', () => {
  const entries = parseDebianChangelog(text);
  const versions = (after: string | undefined, upTo: string) => entriesBetween(entries, after, upTo).entries.map((e) => e.version);

  it('selects versions in (last good, first bad], walking down from the first bad one', () => {
    expect(versions('6.1.170-2', '6.1.172-1')).toEqual(['6.1.172-1', '6.1.170-3']);
    expect(entriesBetween(entries, '6.1.170-2', '6.1.172-1')).toMatchObject({ foundUpTo: true, reachedAfter: true });
    expect(versions('6.1.170-3', '6.1.170-3')).toEqual([]);
  });

  it('orders as Debian versions: ~rc releases come before the release', () => {
    expect(versions('6.1~rc7-1~exp1', '6.1.170-2')).toEqual(['6.1.170-2', '6.1~rc8-1~exp1']);
  });

  it('without a lower bound: every entry from the first bad one down', () => {
    expect(versions(undefined, '6.1.170-3')).toEqual(['6.1.170-3', '6.1.170-2', '6.1~rc8-1~exp1', '6.1~rc7-1~exp1', '6.1~rc6-1~exp1']);
  });

  it('a last good version missing from the changelog: stops at the first older entry, and says it did not reach it', () => {
    const between = entriesBetween(entries, '6.1.171-1', '6.1.174-1');
    expect(between.entries.map((e) => e.version)).toEqual(['6.1.174-1', '6.1.172-1']);
    expect(between.reachedAfter).toBe(false);
  });

  // the headers (package, version, distribution) of the real changelogs of bookworm's
  // linux-headers-6.12.118+deb12-amd64 and trixie-backports' linux-headers-7.3.4+deb13-amd64
  const entry = (pkg: string, version: string, dist: string) =>
    `${pkg} (${version}) ${dist}; urgency=high\n\n  * change of ${version}\n\n -- A <a@b>  Mon, 01 Jan 2026 00:00:00 +0000\n\n`;

  it('keeps the entry a rebuild for another release was made from, though it compares higher (bookworm linux-6.12)', () => {
    const interleaved = parseDebianChangelog(
      entry('linux-6.12', '6.12.118-1~deb12u1', 'bookworm-security') +
        entry('linux', '6.12.118-1', 'trixie-security') +
        entry('linux-6.12', '6.12.117-1~deb12u1', 'bookworm-security') +
        entry('linux', '6.12.117-1', 'trixie-security'),
    );
    const between = entriesBetween(interleaved, '6.12.117-1~deb12u1', '6.12.118-1~deb12u1');
    expect(between.entries.map((e) => e.version)).toEqual(['6.12.118-1~deb12u1', '6.12.118-1']);
    expect(between.reachedAfter).toBe(true);
  });

  it("a backport's changelog lacks the older backport entry: stops at the upload it was rebuilt from", () => {
    const bpo = parseDebianChangelog(
      entry('linux', '7.3.4-1~bpo13+1', 'trixie-backports') +
        entry('linux', '7.3.4-1', 'unstable') +
        entry('linux', '7.3.3-1', 'unstable') +
        entry('linux', '7.3.1-1~exp1', 'experimental'),
    );
    const between = entriesBetween(bpo, '7.3.3-1~bpo13+1', '7.3.4-1~bpo13+1');
    expect(between.entries.map((e) => e.version)).toEqual(['7.3.4-1~bpo13+1', '7.3.4-1']);
    expect(between.reachedAfter).toBe(true);
    expect(rebuiltFrom('7.3.3-1~bpo13+1')).toBe('7.3.3-1');
    expect(rebuiltFrom('6.1.180-1~deb11u1')).toBe('6.1.180-1');
    expect(rebuiltFrom('6.1~rc7-1')).toBe('6.1~rc7-1');
  });
});

describe('capEntries', () => {
  const entries = parseDebianChangelog(text);

  it('keeps at most the entries and lines allowed, counting what it cut', () => {
    const lines = entries.reduce((n, e) => n + e.body.length, 0);
    const capped = capEntries(entries, { entries: 3, lines: 20 });
    expect(capped.entries).toHaveLength(3);
    expect(capped.entries.reduce((n, e) => n + e.body.length, 0)).toBe(20);
    expect(capped.omittedEntries).toBe(4);
    expect(capped.omittedLines).toBe(lines - 20);
    expect(capped.entries[2]?.body).toEqual([]);
  });
});
