import { randomBytes } from 'node:crypto';
import { constants, existsSync } from 'node:fs';
import { access, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { env } from '../config/env.js';
import { KfarmError } from '../errors/kfarm-error.js';
import type { Logger } from '../logging/logger.js';
import { run } from '../process/run.js';
import { archiveGet, archiveUnreachable } from './archive-get.js';
import { signatureVerdict } from './inrelease-signature.js';
import { parseReleaseFile, type ReleaseFile } from './release-file.js';
import { makeDirs } from '../util/make-dir.js';

export { ARCHIVE_UNREACHABLE } from './archive-get.js';

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
 * plain http). Its SHA256 lines are what every index and .deb kfarm reads is checked against
 * (package-stanzas.ts, fetch-deb.ts): a suite that has not changed costs one InRelease
 * download (the mirror sends no ETag or Last-Modified).
 */
export async function fetchReleaseFile(baseUrl: string, suite: string, options: IndexStoreOptions): Promise<ReleaseFile | undefined> {
  const url = `${baseUrl}/dists/${suite}/InRelease`;
  const keyring = await usableKeyring(options.keyring);
  const res = await archiveGet(url, options.timeoutMs ?? 120_000);
  if (res.status === 404) return undefined; // a suite the mirror no longer serves: the caller warns
  if (res.status !== 200) throw archiveUnreachable(url, `HTTP ${res.status}`);
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
