import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { ContainerRuntime } from '../executor/runtime.js';
import { RELEASES } from '../archive/releases.js';
import { KfarmError, describeError } from '../errors/kfarm-error.js';
import { run, runStream } from '../process/run.js';

/**
 * The root of one Debian release (any codename debootstrap knows; bookworm by default) its toolchain image starts from. Pulled when a registry answers;
 * otherwise bootstrapped from the Debian archive with debootstrap and `docker import`, which
 * is how an air-gapped farm (or this project's CI) gets one.
 */
export async function ensureBaseImage(runtime: ContainerRuntime, logger: Logger, say: (line: string) => void, release = 'bookworm'): Promise<string> {
  // a release whose root is another's: experimental is a suite on top of sid, not a system of its own
  const codename = RELEASES.find((r) => r.codename === release)?.base ?? release;
  const baseRef = `kfarm/base:${codename}`;
  const registryRef = `debian:${codename}`;
  if (await runtime.inspectImage(baseRef)) {
    say(`base image ${baseRef} is there`);
    return baseRef;
  }
  say(`pulling ${registryRef}`);
  let pullFailure = '';
  const pulled = await runtime.pullImage(registryRef, 30_000, (reason) => {
    pullFailure = reason;
    logger.debug({ image: registryRef, reason }, 'pull failed');
  });
  if (pulled) {
    await runtime.tagImage(registryRef, 'kfarm/base', codename);
    return baseRef;
  }
  const mirror = await debianMirror();
  say(`no registry answered${pullFailure ? ` (${pullFailure})` : ''}; bootstrapping ${codename} from ${mirror} with debootstrap (about a minute)`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kfarm-debootstrap-'));
  try {
    await run('debootstrap', debootstrapArgs(codename, dir, mirror, existsSync(path.join(DEBOOTSTRAP_SCRIPTS, codename))), { timeoutMs: 30 * 60_000 }).catch((err) => {
      throw new KfarmError('IMAGE_BUILD_FAILED', `debootstrap failed: ${describeError(err)}`, {
        cause: err,
        hint: `debootstrap needs root and the debootstrap package (\`bash scripts/setup.sh\` installs it), or pass --base-image with a Debian ${codename} image you have.`,
      });
    });
    const tar = runStream('tar', ['-C', dir, '-c', '.']);
    await Promise.all([runtime.importImage(Readable.from(tar.stdout), 'kfarm/base', codename), tar.done]);
    logger.info({ image: baseRef }, 'base image imported');
    return baseRef;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const DEBOOTSTRAP_SCRIPTS = '/usr/share/debootstrap/scripts';

/**
 * Pure: debootstrap's arguments for a codename. A codename newer than the host's debootstrap
 * (bookworm's 1.0.128 has sid, testing and unstable but not forky) is bootstrapped with the sid
 * script: Debian's script for every new release is a link to sid's.
 */
export function debootstrapArgs(codename: string, dir: string, mirror: string, hasScript: boolean): string[] {
  return ['--variant=minbase', codename, dir, mirror, ...(hasScript ? [] : [path.join(DEBOOTSTRAP_SCRIPTS, 'sid')])];
}

/** The Debian mirror this host uses (deb822 or one-line sources), else deb.debian.org. */
export async function debianMirror(): Promise<string> {
  const files = ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list'];
  for (const file of files) {
    const text = await readFile(file, 'utf8').catch(() => '');
    const url = parseDebianMirror(text);
    if (url) return url;
  }
  return 'http://deb.debian.org/debian';
}

/**
 * The first Debian archive mirror in apt sources text, deb822 (`URIs:`) or one-line (`deb [opts] URL suite ...`),
 * whatever suite it serves: the host may run bookworm while kfarm bootstraps bullseye or trixie, and every
 * release lives under the same /debian root. Security and ports archives (paths not ending in /debian) are
 * skipped: debootstrap needs the main archive. Disabled deb822 stanzas (`Enabled: no`) are skipped.
 */
export function parseDebianMirror(text: string): string | undefined {
  for (const stanza of text.split(/\n\s*\n/)) {
    const lines = stanza
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'));
    if (lines.some((line) => /^Enabled:\s*no\s*$/i.test(line))) continue;
    for (const line of lines) {
      const deb822 = /^URIs:\s*(.+)$/i.exec(line)?.[1]?.split(/\s+/) ?? [];
      const oneLine = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+/.exec(line)?.[1];
      for (const url of oneLine ? [oneLine] : deb822) {
        if (/^(?:https?|ftp|file):\/\/\S*\/debian\/?$/.test(url)) return url.replace(/\/$/, '');
      }
    }
  }
  return undefined;
}
