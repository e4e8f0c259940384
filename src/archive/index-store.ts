import { createHash, randomBytes } from 'node:crypto';
import { constants, existsSync } from 'node:fs';
import { access, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { env } from '../config/env.js';
import { KfarmError } from '../errors/kfarm-error.js';
import type { Logger } from '../logging/logger.js';
import { run, runStream } from '../process/run.js';
import { isKernelBuildPackage, keepStanzas } from './deb822.js';
import { networkReason } from './fetchability.js';
import { HttpTimeoutError, request, type HttpResponse } from './http-client.js';
import { signatureVerdict } from './inrelease-signature.js';
import { parseReleaseFile, type ReleaseFile } from './release-file.js';
import { makeDirs } from '../util/make-dir.js';

/** `context.reason` of the error an unreachable archive (network, refused, HTTP 5xx) raises */
export const ARCHIVE_UNREACHABLE = 'archive-unreachable';

/** `context.reason` of the error a missing keyring or gpgv raises: the archive cannot be verified */
export const ARCHIVE_KEYRING_MISSING = 'archive-keyring-missing';

/** Debian's archive keys (debian-archive-keyring): bullseye, bookworm and trixie sign with them. */
export const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

export interface IndexStoreOptions {
  /** $KFARM_STATE_DIR/archive */
  cacheDir: string;
  logger: Logger;
  /** default: $KFARM_ARCHIVE_KEYRING, else DEBIAN_KEYRING */
  keyring?: string;
  timeoutMs?: number;
}

/**
 * The keyring InRelease files are checked against: the caller's, else $KFARM_ARCHIVE_KEYRING,
 * else Debian's. The archive is plain http, so an index kfarm cannot verify is never read:
 * no keyring (Ubuntu installs none by default) is an error before anything is downloaded.
 */
export async function usableKeyring(given?: string, source: { archiveKeyring: string | undefined } = env): Promise<string> {
  const keyring = given ?? source.archiveKeyring ?? DEBIAN_KEYRING;
  const how =
    "Install Debian's archive keys (`apt-get install debian-archive-keyring`, also on Ubuntu; scripts/setup.sh does), or point KFARM_ARCHIVE_KEYRING at a keyring that holds them.";
  let readable: boolean;
  try {
    const st = await stat(keyring);
    readable = st.isFile() && st.size > 0;
    if (readable) await access(keyring, constants.R_OK);
  } catch {
    readable = false;
  }
  if (!readable) {
    throw new KfarmError('ARCHIVE_UNVERIFIED', `cannot verify the Debian archive: no keyring at ${keyring}`, {
      context: { keyring, reason: ARCHIVE_KEYRING_MISSING },
      hint: `kfarm reads the archive's indexes over http and uses none it cannot check against Debian's keys. ${how}`,
    });
  }
  return keyring;
}

/**
 * Reads a suite's InRelease (its signature checked with gpgv against usableKeyring(): the archive is
 * plain http), then the kernel stanzas of its main Packages index for one arch. Those are
 * cached under cacheDir keyed by the index's SHA256 in InRelease: a suite that has not
 * changed costs one InRelease download (the mirror sends no ETag or Last-Modified).
 */
export async function fetchReleaseFile(baseUrl: string, suite: string, options: IndexStoreOptions): Promise<ReleaseFile | undefined> {
  const url = `${baseUrl}/dists/${suite}/InRelease`;
  const keyring = await usableKeyring(options.keyring);
  const res = await get(url, options);
  if (res.status === 404) return undefined; // a suite the mirror no longer serves: the caller warns
  if (res.status !== 200) throw unreachable(url, `HTTP ${res.status}`);
  return parseReleaseFile(await verifiedText(url, res.body, keyring, path.join(options.cacheDir, 'tmp')));
}

/**
 * The part of an InRelease its signature covers, as gpgv writes it out: text outside the
 * signed block (which gpgv ignores and a naive parse would read) never reaches the parser.
 */
async function verifiedText(url: string, body: Buffer, keyring: string, dir: string): Promise<string> {
  await makeDirs(dir);
  const file = path.join(dir, `${randomBytes(6).toString('hex')}.InRelease`);
  const signed = `${file}.signed`;
  await writeFile(file, body);
  try {
    let check;
    try {
      check = await run('gpgv', ['--status-fd', '2', '--keyring', keyring, '--output', signed, file], { allowFailure: true, timeoutMs: 30_000 });
    } catch (err) {
      throw new KfarmError('ARCHIVE_UNVERIFIED', `cannot verify the Debian archive: gpgv does not run`, {
        context: { url, keyring, reason: ARCHIVE_KEYRING_MISSING },
        cause: err,
        hint: "kfarm checks the signature of the archive's indexes with gpgv: install it (`apt-get install gpgv`).",
      });
    }
    const verdict = signatureVerdict(check.stderr);
    if (!verdict.ok || !existsSync(signed)) {
      const said = check.stderr
        .split('\n')
        .filter((l) => l.startsWith('gpgv:'))
        .slice(-2)
        .join(' ');
      throw new KfarmError('ARCHIVE_UNVERIFIED', `${url} has no valid signature from a key in ${keyring}: ${verdict.ok ? 'gpgv wrote no signed text' : verdict.why}`, {
        context: { url, keyring },
        hint: `gpgv said: ${said || check.stderr.trim().split('\n').pop()}. Something between here and the mirror altered it, or the keyring is older than the archive's keys: try again, another mirror, or a newer debian-archive-keyring.`,
      });
    }
    return await readFile(signed, 'utf8');
  } finally {
    await rm(file, { force: true });
    await rm(signed, { force: true });
  }
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
  const indexPath = `main/binary-${arch}/Packages.xz`;
  const entry = release.sha256.get(indexPath);
  if (!entry) return undefined;
  const dir = path.join(options.cacheDir, mirrorName, suite, 'main', `binary-${arch}`);
  const cached = path.join(dir, `${entry.sha256}.kernel-stanzas`);
  if (existsSync(cached)) return { text: await readFile(cached, 'utf8'), fromCache: true };

  const url = `${baseUrl}/dists/${suite}/${indexPath}`;
  const res = await get(url, options);
  if (res.status !== 200) throw unreachable(url, `HTTP ${res.status}`);
  const body = res.body;
  const sha = createHash('sha256').update(body).digest('hex');
  if (sha !== entry.sha256) {
    throw new KfarmError('COMMAND_FAILED', `${url} does not match its checksum in InRelease`, {
      context: { url },
      hint: 'The mirror may be mid-update; run the command again in a few minutes.',
    });
  }
  await makeDirs(dir);
  const xzFile = path.join(dir, `.${randomBytes(4).toString('hex')}.xz`);
  await writeFile(xzFile, body);
  try {
    const xz = runStream('xz', ['-dc', xzFile]);
    const [text] = await Promise.all([keepStanzas(createInterface({ input: xz.stdout, crlfDelay: Infinity }), isKernelBuildPackage), xz.done]);
    for (const old of await readdir(dir)) if (old.endsWith('.kernel-stanzas')) await rm(path.join(dir, old), { force: true });
    const tmp = `${cached}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, text);
    await rename(tmp, cached); // atomic: a concurrent reader sees the whole file or none
    return { text, fromCache: false };
  } finally {
    await rm(xzFile, { force: true });
  }
}

async function get(url: string, options: IndexStoreOptions): Promise<HttpResponse> {
  try {
    return await request(url, { timeoutMs: options.timeoutMs ?? 120_000 });
  } catch (err) {
    throw unreachable(url, err instanceof HttpTimeoutError ? err.message : networkReason(err), err);
  }
}

function unreachable(url: string, why: string, cause?: unknown): KfarmError {
  return new KfarmError('COMMAND_FAILED', `the Debian archive is unreachable: ${url}: ${why}`, {
    // callers that can say more (sync: what it leaves untouched) recognise it by this
    context: { url, reason: ARCHIVE_UNREACHABLE },
    cause,
    hint: 'Check the network (and proxy) from this machine to deb.debian.org over http, then run the command again.',
  });
}
