import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { KfarmError } from '../errors/kfarm-error.js';
import { runStream } from '../process/run.js';
import { makeDirs } from '../util/make-dir.js';
import { archiveGet, archiveUnreachable } from './archive-get.js';
import { isKernelBuildPackage, keepStanzas, parseStanzas, type Stanza } from './deb822.js';
import { fetchReleaseFile, type IndexStoreOptions } from './index-store.js';
import type { ReleaseFile } from './release-file.js';
import { DEFAULT_MIRRORS, RELEASES, type Mirror } from './releases.js';

/**
 * The one reader of a suite's main Packages index: the stanzas of the packages a caller needs
 * (kernel headers, kernel images, busybox-static), kept as text under
 * <cacheDir>/<mirror>/<suite>/main/binary-<arch>/<index sha256>.<kind>. The index's SHA256
 * comes from the gpgv-checked InRelease, so the download is trusted through the signed chain,
 * and an unchanged index is never downloaded again (the mirror sends no ETag).
 */
export interface StanzaKind {
  /** the cache file's suffix: kernel-stanzas, image-stanzas... one per predicate */
  name: string;
  keep: (pkg: string) => boolean;
}

export interface SuiteIndex {
  baseUrl: string;
  mirror: string;
  suite: string;
  arch: string;
  /** the suite's InRelease, verified */
  release: ReleaseFile;
}

/** The `kind` stanzas of dists/<suite>/main/binary-<arch>/Packages, as text; undefined where InRelease lists no such index. */
export async function suiteStanzas(index: SuiteIndex, kind: StanzaKind, options: IndexStoreOptions): Promise<{ text: string; fromCache: boolean } | undefined> {
  const indexPath = `main/binary-${index.arch}/Packages.xz`;
  const entry = index.release.sha256.get(indexPath);
  if (!entry) return undefined;
  const dir = path.join(options.cacheDir, index.mirror, index.suite, 'main', `binary-${index.arch}`);
  const cached = path.join(dir, `${entry.sha256}.${kind.name}`);
  if (existsSync(cached)) return { text: await readFile(cached, 'utf8'), fromCache: true };

  const url = `${index.baseUrl}/dists/${index.suite}/${indexPath}`;
  const res = await archiveGet(url, options.timeoutMs ?? 300_000);
  if (res.status !== 200) throw archiveUnreachable(url, `HTTP ${res.status}`);
  if (createHash('sha256').update(res.body).digest('hex') !== entry.sha256) {
    throw new KfarmError('COMMAND_FAILED', `${url} does not match its checksum in InRelease`, {
      context: { url },
      hint: 'The mirror may be mid-update; run the command again in a few minutes.',
    });
  }
  await makeDirs(dir);
  const xzFile = path.join(dir, `.${randomBytes(4).toString('hex')}.xz`);
  await writeFile(xzFile, res.body);
  try {
    const xz = runStream('xz', ['-dc', xzFile]);
    const [text] = await Promise.all([keepStanzas(createInterface({ input: xz.stdout, crlfDelay: Infinity }), kind.keep), xz.done]);
    for (const old of await readdir(dir)) if (old.endsWith(`.${kind.name}`)) await rm(path.join(dir, old), { force: true });
    const tmp = `${cached}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, text);
    await rename(tmp, cached); // atomic: a concurrent reader sees the whole file or none
    return { text, fromCache: false };
  } finally {
    await rm(xzFile, { force: true });
  }
}

export interface LocatedStanza {
  stanza: Stanza;
  /** the mirror that holds the stanza's Filename */
  baseUrl: string;
}

/** per process, per (cache, release, arch, kind): one run reads each suite's InRelease once */
const memo = new Map<string, Promise<LocatedStanza[]>>();

/** The `kind` stanzas of every suite of a release (debian-12: bookworm, -security, -updates, -backports) for one arch. */
export function releaseStanzas(
  release: string,
  arch: string,
  kind: StanzaKind,
  options: IndexStoreOptions,
  mirrors: Readonly<Record<Mirror, string>> = DEFAULT_MIRRORS,
): Promise<LocatedStanza[]> {
  const key = [options.cacheDir, release, arch, kind.name, mirrors.debian, mirrors['debian-security']].join('\0');
  let pending = memo.get(key);
  if (!pending) {
    pending = readReleaseStanzas(release, arch, kind, options, mirrors);
    memo.set(key, pending);
    pending.catch(() => memo.delete(key)); // a failure is retried by the next caller
  }
  return pending;
}

async function readReleaseStanzas(
  release: string,
  arch: string,
  kind: StanzaKind,
  options: IndexStoreOptions,
  mirrors: Readonly<Record<Mirror, string>>,
): Promise<LocatedStanza[]> {
  const spec = RELEASES.find((r) => r.name === release);
  if (!spec) throw new KfarmError('BAD_OPTION', `kfarm knows no release named ${release}`, { context: { release } });
  const out: LocatedStanza[] = [];
  for (const { suite, mirror } of spec.suites) {
    const baseUrl = mirrors[mirror];
    const releaseFile = await fetchReleaseFile(baseUrl, suite, options);
    if (!releaseFile) continue;
    const got = await suiteStanzas({ baseUrl, mirror, suite, arch, release: releaseFile }, kind, options);
    if (got) for (const stanza of parseStanzas(got.text)) out.push({ stanza, baseUrl });
  }
  return out;
}

/** The kernel stanzas (linux-headers/-kbuild/-compiler) of dists/<suite>/main/binary-<arch>/Packages, as text. */
export async function kernelStanzas(
  baseUrl: string,
  mirrorName: string,
  suite: string,
  arch: string,
  release: ReleaseFile,
  options: IndexStoreOptions,
): Promise<{ text: string; fromCache: boolean } | undefined> {
  return suiteStanzas({ baseUrl, mirror: mirrorName, suite, arch, release }, KERNEL_BUILD_STANZAS, options);
}

const KERNEL_BUILD_STANZAS: StanzaKind = { name: 'kernel-stanzas', keep: isKernelBuildPackage };
