import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { KfarmError } from '../errors/kfarm-error.js';
import type { Logger } from '../logging/logger.js';
import { run, runStream } from '../process/run.js';
import { isKernelBuildPackage, keepStanzas } from './deb822.js';
import { networkReason } from './fetchability.js';
import { HttpTimeoutError, request, type HttpResponse } from './http-client.js';
import { parseReleaseFile, type ReleaseFile } from './release-file.js';

/** `context.reason` of the error an unreachable archive (network, refused, HTTP 5xx) raises */
export const ARCHIVE_UNREACHABLE = 'archive-unreachable';

/** Debian's archive keys (debian-archive-keyring): bullseye, bookworm and trixie sign with them. */
export const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

export interface IndexStoreOptions {
  /** $KFARM_STATE_DIR/archive */
  cacheDir: string;
  logger: Logger;
  keyring?: string;
  timeoutMs?: number;
}

/**
 * Reads a suite's InRelease (checked with gpgv when the keyring is there: the archive is
 * plain http), then the kernel stanzas of its main Packages index for one arch. Those are
 * cached under cacheDir keyed by the index's SHA256 in InRelease: a suite that has not
 * changed costs one InRelease download (the mirror sends no ETag or Last-Modified).
 */
export async function fetchReleaseFile(baseUrl: string, suite: string, options: IndexStoreOptions): Promise<ReleaseFile | undefined> {
  const url = `${baseUrl}/dists/${suite}/InRelease`;
  const res = await get(url, options);
  if (res.status === 404) return undefined; // a suite the mirror no longer serves: the caller warns
  if (res.status !== 200) throw unreachable(url, `HTTP ${res.status}`);
  const text = res.body.toString('utf8');
  const keyring = options.keyring ?? DEBIAN_KEYRING;
  if (existsSync(keyring)) {
    const dir = path.join(options.cacheDir, 'tmp');
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, `${suite}-${randomBytes(4).toString('hex')}.InRelease`);
    await writeFile(file, text);
    try {
      const check = await run('gpgv', ['--keyring', keyring, file], { allowFailure: true, timeoutMs: 30_000 });
      if (check.exitCode !== 0) {
        throw new KfarmError('COMMAND_FAILED', `${url} has no valid signature from a Debian archive key`, {
          context: { url },
          hint: `gpgv said: ${check.stderr.trim().split('\n').slice(-2).join(' ')}. Something between here and the mirror altered it; try again, or another mirror.`,
        });
      }
    } finally {
      await rm(file, { force: true });
    }
  } else {
    options.logger.warn({ keyring, url }, 'no Debian archive keyring: InRelease signature not checked');
  }
  return parseReleaseFile(text);
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
  await mkdir(dir, { recursive: true });
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
