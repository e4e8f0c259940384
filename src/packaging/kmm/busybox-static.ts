import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { debFile } from '../../archive/deb-file.js';
import { cachedDeb, debCandidates, fetchFirstDeb, type DebEntry } from '../../archive/fetch-deb.js';
import type { IndexStoreOptions } from '../../archive/index-store.js';
import { releaseStanzas, type StanzaKind } from '../../archive/package-stanzas.js';
import type { Mirror } from '../../archive/releases.js';
import { KfarmError } from '../../errors/kfarm-error.js';
import { makeDirs } from '../../util/make-dir.js';
import { checkStaticElf } from './static-cp.js';

/**
 * A KMM image's cp for any arch: Debian's busybox-static of the kernel's own release and arch
 * (debian-12 arm64 → bookworm's busybox-static_..._arm64.deb), trusted only through the signed
 * chain: InRelease (gpgv) → main/binary-<arch>/Packages.xz (its SHA256 in InRelease) → the
 * .deb (its SHA256 in the Packages stanza, a pool/ path) → ./bin/busybox (./usr/bin/ from
 * trixie on) → checkStaticElf.
 *
 * The first pick is pinned in <stateDir>/archive/busybox-static/<release>-<arch>.json and the
 * .deb kept by its sha256 in <stateDir>/archive/debs: later builds read both and download
 * nothing (not even InRelease), and the images stay byte-reproducible across builds. Deleting
 * the pin picks the archive's newest again.
 */
const BUSYBOX_STANZAS: StanzaKind = { name: 'busybox-stanzas', keep: (pkg) => pkg === 'busybox-static' };
/** bookworm and older ship it in /bin, trixie (merged /usr) in /usr/bin */
const MEMBERS = ['./bin/busybox', './usr/bin/busybox'];

export interface BusyboxOptions {
  stateDir: string;
  logger: Logger;
  /** tests: another archive (a local mirror) */
  mirrors?: Readonly<Record<Mirror, string>>;
  keyring?: string;
}

const memo = new Map<string, Promise<Buffer>>();

/** The static busybox for (release, arch), from the cache or the archive; memoised per process. */
export function busyboxStatic(release: string, debianArch: string, options: BusyboxOptions): Promise<Buffer> {
  const key = `${options.stateDir}\0${release}\0${debianArch}`;
  let pending = memo.get(key);
  if (!pending) {
    pending = loadBusybox(release, debianArch, options);
    memo.set(key, pending);
    pending.catch(() => memo.delete(key));
  }
  return pending;
}

async function loadBusybox(release: string, debianArch: string, options: BusyboxOptions): Promise<Buffer> {
  const archiveDir = path.join(options.stateDir, 'archive');
  const debDir = path.join(archiveDir, 'debs');
  const pin = path.join(archiveDir, 'busybox-static', `${release}-${debianArch}.json`);
  const pinned = await readPin(pin);
  const cached = pinned && (await cachedDeb(pinned.sha256, debDir));
  if (pinned && cached) return busyboxOf(await readFile(cached), pinned, debianArch);

  const index: IndexStoreOptions = { cacheDir: archiveDir, logger: options.logger, ...(options.keyring ? { keyring: options.keyring } : {}) };
  const stanzas = await releaseStanzas(release, debianArch, BUSYBOX_STANZAS, index, options.mirrors);
  const candidates = debCandidates(stanzas, 'busybox-static');
  if (candidates.length === 0) {
    throw new KfarmError('COMMAND_FAILED', `the ${release} archive has no busybox-static for ${debianArch}: a KMM image needs a static cp of its arch`, {
      context: { release, arch: debianArch },
      hint: "Give the kmm packer's staticCp a static busybox of that arch.",
    });
  }
  options.logger.info({ release, arch: debianArch, candidates: candidates.map((c) => c.url) }, 'fetching busybox-static for KMM images');
  const { entry, file } = await fetchFirstDeb(candidates, debDir, options.logger);
  const deb = await readFile(file);
  const data = await busyboxOf(deb, entry, debianArch);
  await makeDirs(path.dirname(pin));
  const tmp = `${pin}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, `${JSON.stringify(entry, null, 2)}\n`);
  await rename(tmp, pin);
  return data;
}

/** The busybox of a busybox-static .deb, checked static and of `debianArch`. */
export async function busyboxOf(deb: Buffer, entry: DebEntry, debianArch: string): Promise<Buffer> {
  const what = `${entry.package} ${entry.version} (${entry.url})`;
  let data: Buffer | undefined;
  for (const member of MEMBERS) if (!data) data = await debFile(deb, member, what);
  const problem = data ? checkStaticElf(data, debianArch) : `holds no ${MEMBERS.join(' or ')}`;
  if (!data || problem) {
    throw new KfarmError('COMMAND_FAILED', `${what}: its busybox ${problem ?? ''}: a KMM image for ${debianArch} needs a static ${debianArch} cp`, {
      context: { url: entry.url, arch: debianArch },
      hint: "Give the kmm packer's staticCp a static busybox of that arch.",
    });
  }
  return data;
}

/** The pinned entry, or undefined where there is none or it is not one of ours (then the archive is read again). */
async function readPin(file: string): Promise<DebEntry | undefined> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
  const e = parsed as Partial<DebEntry> | null;
  if (!e || typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256) || typeof e.url !== 'string' || typeof e.version !== 'string' || typeof e.package !== 'string')
    return undefined;
  return { package: e.package, version: e.version, url: e.url, sha256: e.sha256, size: Number(e.size) };
}
