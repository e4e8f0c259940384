import type { ContainerRuntime } from '../../executor/runtime.js';
import { catalogFromImages, LABEL_HEADERS_VERSION, LABEL_IMAGE, LABEL_KERNELS } from '../../images/catalog.js';
import { kernelImageRef } from '../../images/kernel-ref.js';
import { cleanText, TEXT_LIMITS } from '../../util/clean-text.js';
import { capEntries, DEFAULT_CHANGELOG_LIMITS, entriesBetween, parseDebianChangelog, type ChangelogEntry, type ChangelogLimits } from './debian-changelog.js';
import { kernelAbi } from './kernel-order.js';
import type { CheckWindow, SeriesKey } from './series-windows.js';

/**
 * What Debian changed between the last kernel of a series that built and the first that failed,
 * read from the changelog the headers packages carry inside the kernel's kfarm image. Where it
 * lives (checked on this host's images):
 * - debian-11 and debian-12 amd64 (5.10, 6.1 and bookworm's 6.12):
 *   /usr/share/doc/linux-headers-<kernel>/changelog.Debian.gz, a directory of its own (its twin
 *   in linux-headers-<abi>-common)
 * - debian-13 (7.3.4+deb13 here): linux-headers-<kernel> is a symlink to linux-base-<kernel>,
 *   which holds the changelog; the path reads through it
 * - arm64 images (images/cross): the arm64 headers .deb is unpacked with `dpkg-deb -x` and only
 *   its /usr/src and modules tree copied, so only linux-headers-<abi>-common (arch:all, installed
 *   by apt) has the changelog
 * All are the changelog of the one source upload (linux, linux-6.12), so the first found is read.
 * A kernel without an image here, or an image without a changelog, is said in the answer (the
 * farm prunes images; a missing changelog is not an error). The engine unreachable still throws.
 */

export interface ChangelogRequest {
  /** kfarm image name of the series' release: debian-12 */
  release: string;
  flavour: string;
  /** the newest kernel that built (absent when none ever did) */
  lastGood?: string;
  /** the first kernel that failed after it: its image's changelog is read */
  firstBad: string;
  /** the headers packages' Debian versions when the caller knows them (FarmDb's kernels); otherwise the images' labels say */
  versions?: { lastGood?: string; firstBad?: string };
}

/**
 * Pure: what to read for a window: a broken window's span (lastGood, firstBad], a never-built
 * one's first kernel. Undefined for ok and fixed windows (their lastGood is the newest kernel,
 * not the one before the failures).
 */
export function changelogRequest(series: Pick<SeriesKey, 'release' | 'flavour'>, window: CheckWindow, versions?: ChangelogRequest['versions']): ChangelogRequest | undefined {
  if ((window.state !== 'broken' && window.state !== 'never-built') || !window.firstBad) return undefined;
  return {
    release: series.release,
    flavour: series.flavour,
    ...(window.state === 'broken' && window.lastGood ? { lastGood: window.lastGood } : {}),
    firstBad: window.firstBad,
    ...(versions ? { versions } : {}),
  };
}

export interface ChangelogReadLimits extends ChangelogLimits {
  /** bytes of the decompressed changelog read (default 8 MiB: the whole 6.1 changelog is 3.7 MB) */
  readBytes: number;
  /** how long the helper container may run, ms (default 120 s) */
  timeoutMs: number;
}

export const DEFAULT_READ_LIMITS: ChangelogReadLimits = { ...DEFAULT_CHANGELOG_LIMITS, readBytes: 8 * 1024 * 1024, timeoutMs: 120_000 };

export interface HeadersChangelog {
  lastGood?: { kernel: string; version?: string };
  firstBad: { kernel: string; version?: string };
  /** the image and file read, when one was */
  source?: { image: string; path: string };
  /** the entries from firstBad's upload down to (not including) lastGood's, newest first (see entriesBetween); with no lastGood version, firstBad's own entry */
  entries: ChangelogEntry[];
  omittedEntries: number;
  omittedLines: number;
  /** the changelog read reaches lastGood's version: the entries are the whole span */
  complete: boolean;
  /** why the entries are missing or may be partial, said for people; absent when complete */
  note?: string;
}

const MARK = 'kfarm-changelog ';
const NONE = 'kfarm-changelog-none';

// "$1" kernel, "$2" ABI, "$3" bytes to read: arguments, never spliced into the script
const SCRIPT = [
  'for f in "/usr/share/doc/linux-headers-$1/changelog.Debian.gz" "/usr/share/doc/linux-headers-$2-common/changelog.Debian.gz" "/usr/share/doc/linux-headers-$2-common-rt/changelog.Debian.gz"; do',
  `  if [ -r "$f" ]; then echo "${MARK}$f"; zcat "$f" 2>/dev/null | head -c "$3"; exit 0; fi`,
  'done',
  `echo ${NONE}; exit 3`,
].join('\n');

interface FoundImage {
  ref: string;
  /** the headers package's Debian version, when the image says */
  version?: string;
}

/** The image holding a kernel: its own tag first, else any kfarm image of the release whose labels list it (the older many-kernel layout). */
async function findImage(runtime: ContainerRuntime, release: string, kernel: string): Promise<FoundImage | undefined> {
  const own = kernelImageRef(release, kernel);
  const info = await runtime.inspectImage(own);
  if (info && (info.labels[LABEL_KERNELS] ?? '').split(/\s+/).includes(kernel)) {
    const version = info.labels[LABEL_HEADERS_VERSION];
    return { ref: own, ...(version ? { version } : {}) };
  }
  const held = catalogFromImages(await runtime.listImages(LABEL_IMAGE)).find((i) => i.name === release && i.kernels.includes(kernel));
  return held ? { ref: held.ref, ...(held.headersVersion ? { version: held.headersVersion } : {}) } : undefined;
}

// release and kernel names make an image reference and a path: anything else is not a name kfarm gave
const NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;

export async function headersChangelog(runtime: ContainerRuntime, request: ChangelogRequest, limits: ChangelogReadLimits = DEFAULT_READ_LIMITS): Promise<HeadersChangelog> {
  const { release, flavour, lastGood, firstBad } = request;
  let goodVersion = request.versions?.lastGood;
  const answer = (badVersion: string | undefined, part: Partial<HeadersChangelog>): HeadersChangelog => ({
    ...(lastGood ? { lastGood: { kernel: lastGood, ...(goodVersion ? { version: goodVersion } : {}) } } : {}),
    firstBad: { kernel: firstBad, ...(badVersion ? { version: badVersion } : {}) },
    entries: [],
    omittedEntries: 0,
    omittedLines: 0,
    complete: false,
    ...part,
    ...(part.note ? { note: cleanText(part.note, TEXT_LIMITS.message) } : {}),
  });
  if (![release, firstBad, ...(lastGood ? [lastGood] : [])].every((n) => NAME.test(n)))
    return answer(request.versions?.firstBad, { note: `not a release and kernel kfarm names: ${release} ${lastGood ?? ''} ${firstBad}` });
  const bad = await findImage(runtime, release, firstBad);
  if (lastGood && goodVersion === undefined) goodVersion = (await findImage(runtime, release, lastGood))?.version;
  if (!bad)
    return answer(request.versions?.firstBad, {
      note: `no image of ${release} holds ${firstBad} on this host (${kernelImageRef(release, firstBad)}): its changelog cannot be read (kfarm images sync brings it back)`,
    });
  const ref = bad.ref;

  const run = await runtime.runHelper(ref, ['sh', '-c', SCRIPT, 'sh', firstBad, kernelAbi(firstBad, flavour), String(limits.readBytes + 1)], undefined, limits.timeoutMs);
  const newline = run.output.indexOf('\n');
  const head = newline < 0 ? run.output : run.output.slice(0, newline);
  if (run.exitCode !== 0 || !head.startsWith(MARK)) {
    const why = head.startsWith(NONE)
      ? 'carries no changelog (looked in /usr/share/doc/linux-headers-<kernel> and -<abi>-common)'
      : `could not be read (exit ${run.exitCode}: ${run.output.slice(-300).trim()})`;
    return answer(request.versions?.firstBad ?? bad.version, { note: `the headers in ${ref} ${why}` });
  }
  const path = cleanText(head.slice(MARK.length), TEXT_LIMITS.line);
  const text = run.output.slice(newline + 1);
  const truncated = Buffer.byteLength(text) > limits.readBytes;
  let parsed = parseDebianChangelog(text);
  // the read stopped mid-entry: that entry is partial, so it goes (the rest is whole)
  if (truncated && parsed.length > 0 && parsed[parsed.length - 1]?.maintainer === undefined) parsed = parsed.slice(0, -1);
  const badVersion = request.versions?.firstBad ?? bad.version ?? parsed[0]?.version;
  if (!badVersion) return answer(undefined, { source: { image: ref, path }, note: `${path} in ${ref} holds no changelog entry` });

  const between = entriesBetween(parsed, goodVersion, badVersion);
  let selected = between.entries;
  const notes: string[] = [];
  if (!between.foundUpTo) notes.push(`${badVersion} (${firstBad}) has no entry of its own in ${path}: the entries begin at the newest one older than it`);
  if (goodVersion === undefined) {
    selected = selected.slice(0, 1);
    notes.push(
      lastGood
        ? `${lastGood}'s headers version is unknown (its image is gone and none was given): only ${firstBad}'s own entry is shown`
        : `no kernel of the series built before ${firstBad}: only its own entry is shown`,
    );
  } else if (!between.reachedAfter) {
    // the walk ran to the end of what was read, or stopped at an entry older than lastGood's
    const ranOut = selected.length === 0 || selected[selected.length - 1] === parsed[parsed.length - 1];
    notes.push(
      ranOut && truncated
        ? `the changelog was read up to ${limits.readBytes} bytes and ${goodVersion} (${lastGood ?? 'last good'}) is not within them: older entries of the span are missing`
        : `${goodVersion} (${lastGood ?? 'last good'}) is not in ${firstBad}'s changelog (another source line, or an abridged changelog): the entries stop at the first older one`,
    );
  }
  const complete = notes.length === 0;
  const note = complete ? undefined : notes.join('; ');
  const capped = capEntries(selected, limits);
  return answer(badVersion, { source: { image: ref, path }, ...capped, complete, ...(note ? { note } : {}) });
}
