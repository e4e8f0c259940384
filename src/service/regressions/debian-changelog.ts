import { compareDebianVersions } from '../../archive/debian-version.js';
import { cleanText, TEXT_LIMITS } from '../../util/clean-text.js';
import type { ChangelogEntryReport } from '../../report/report.js';

/**
 * Pure: a Debian changelog (debian/changelog, shipped as /usr/share/doc/<pkg>/changelog.Debian.gz),
 * newest entry first:
 *
 *   linux (6.1.192-3) bookworm-security; urgency=high
 *
 *     * nfsd: preflight SEQUENCE replies before accepting a slot (CVE-2026-99362)
 *
 *    -- Salvatore Bonaccorso <carnil@debian.org>  Thu, 26 Nov 2026 18:12:56 +0100
 *
 * The text comes from the archive, so every field is cleaned (no escapes or control characters,
 * bounded lines) as it is read. Lines outside entries (blank lines, the `# Older entries have
 * been removed` note, Emacs local variables) are skipped.
 */

/** one entry as parsed: the report carries the same shape (report.ts's ChangelogEntryReport) */
export type ChangelogEntry = ChangelogEntryReport;

const HEADER = /^([a-z0-9][a-z0-9+.-]*) \(([^()\s]+)\)((?:\s+[A-Za-z0-9+./-]+)+)\s*;(.*)$/;
const TRAILER = /^ -- (.+?<[^>]*>) {1,2}(\S.*)$/;
const line = (text: string) => cleanText(text, TEXT_LIMITS.line);

export function parseDebianChangelog(text: string): ChangelogEntry[] {
  const entries: ChangelogEntry[] = [];
  let open: ChangelogEntry | undefined;
  const close = () => {
    if (!open) return;
    while (open.body.length > 0 && open.body[open.body.length - 1]?.trim() === '') open.body.pop();
    entries.push(open);
    open = undefined;
  };
  for (const raw of text.split(/\r?\n/)) {
    const header = HEADER.exec(raw);
    if (header) {
      close(); // an entry without its trailer still counts, without maintainer and date
      const urgency = /(?:^|[\s,])urgency=([^\s,]+)/i.exec(header[4] ?? '');
      open = {
        package: line(header[1] ?? ''),
        version: line(header[2] ?? ''),
        distribution: line((header[3] ?? '').trim()),
        urgency: line(urgency?.[1]?.toLowerCase() ?? ''),
        body: [],
      };
      continue;
    }
    if (!open) continue;
    const trailer = TRAILER.exec(raw);
    if (trailer) {
      open.maintainer = line(trailer[1] ?? '');
      open.date = line((trailer[2] ?? '').trim());
      close();
      continue;
    }
    // change lines are indented; a line at the margin (the `# Older entries` note, Emacs local
    // variables, an old-format log) is no entry's: the open one ends without its trailer
    if (/^\S/.test(raw)) {
      close();
      continue;
    }
    if (open.body.length === 0 && raw.trim() === '') continue;
    open.body.push(line(raw.trimEnd()));
  }
  close();
  return entries;
}

/** 7.3.3-1~bpo13+1 -> 7.3.3-1, 6.12.117-1~deb12u1 -> 6.12.117-1: the upload a rebuild for another release was made from */
export function rebuiltFrom(version: string): string {
  const dash = version.lastIndexOf('-');
  const tilde = version.indexOf('~', dash + 1);
  return dash > 0 && tilde > dash ? version.slice(0, tilde) : version;
}

export interface Between {
  /** newest first, as the changelog has them */
  entries: ChangelogEntry[];
  /** `upTo` was an entry of the changelog (else the walk began at the newest entry not above it) */
  foundUpTo: boolean;
  /** the walk ended on `after`'s own entry (or the upload it was rebuilt from): the span is whole */
  reachedAfter: boolean;
}

/**
 * Pure: what changed from the last good kernel's upload (`after`) to the first bad one's (`upTo`):
 * the entries in (after, upTo], walked in changelog order from upTo's entry down to after's.
 * Walked, not filtered by version: a rebuild for another release puts its own entry above the
 * entry of the upload it was made from, which compares higher (7.3.4-1 > 7.3.4-1~bpo13+1;
 * bookworm's linux-6.12 6.12.118-1~deb12u1 sits over trixie's 6.12.118-1), and that entry holds
 * the actual changes. So the walk keeps every entry until it meets after's version, the version
 * after was rebuilt from (a backport's changelog drops the older backport entries), or one older
 * than after. Without `after`: every entry from upTo's down.
 */
export function entriesBetween(entries: readonly ChangelogEntry[], after: string | undefined, upTo: string): Between {
  let start = entries.findIndex((e) => e.version === upTo);
  const foundUpTo = start >= 0;
  if (!foundUpTo) start = entries.findIndex((e) => compareDebianVersions(e.version, upTo) <= 0);
  if (start < 0) return { entries: [], foundUpTo, reachedAfter: false };
  const out: ChangelogEntry[] = [];
  const base = after === undefined ? undefined : rebuiltFrom(after);
  for (const entry of entries.slice(start)) {
    if (after !== undefined && (entry.version === after || entry.version === base)) return { entries: out, foundUpTo, reachedAfter: true };
    if (after !== undefined && compareDebianVersions(entry.version, after) <= 0) return { entries: out, foundUpTo, reachedAfter: false };
    out.push(entry);
  }
  return { entries: out, foundUpTo, reachedAfter: false };
}

export interface ChangelogLimits {
  /** entries kept (default 50) */
  entries: number;
  /** body lines kept over all entries (default 5000: one upstream stable update lists ~1000 commits) */
  lines: number;
}

export const DEFAULT_CHANGELOG_LIMITS: ChangelogLimits = { entries: 50, lines: 5000 };

/** Pure: the entries within the limits, newest first; what was cut is counted, never silently dropped. */
export function capEntries(
  entries: readonly ChangelogEntry[],
  limits: ChangelogLimits = DEFAULT_CHANGELOG_LIMITS,
): { entries: ChangelogEntry[]; omittedEntries: number; omittedLines: number } {
  const kept: ChangelogEntry[] = [];
  let budget = limits.lines;
  let omittedLines = 0;
  for (const entry of entries.slice(0, limits.entries)) {
    const body = entry.body.slice(0, Math.max(0, budget));
    omittedLines += entry.body.length - body.length;
    budget -= body.length;
    kept.push({ ...entry, body });
  }
  const dropped = entries.slice(limits.entries);
  return { entries: kept, omittedEntries: dropped.length, omittedLines: omittedLines + dropped.reduce((n, e) => n + e.body.length, 0) };
}
