import { createHash } from 'node:crypto';
import type { TarEntry } from '../executor/archive.js';
import type { ArchiveSuite, Mirror } from '../archive/releases.js';

/**
 * A kernel image built from another mirror than Debian's (`kfarm images sync --mirror`, a local
 * mirror, kfarm serve's test mirror): apt in the build reads that mirror, trusting the keyring
 * kfarm checked its InRelease with, for this one step. The recipe's Dockerfile is left as it is
 * (so images built from Debian's mirrors keep their cache hash); these steps go around its own.
 */
export interface ArchiveBuildSource {
  mirrors: Readonly<Record<Mirror, string>>;
  /** the keyring file's bytes: copied into the build context and named by Signed-By */
  keyring: Buffer;
  /** the release's suites the mirror serves (those whose InRelease discovery read) */
  suites: readonly ArchiveSuite[];
}

/** where the keyring and the mirror's sources sit inside the build, removed at its end */
const DIR = '/etc/kfarm-archive';
const SOURCES = 'kfarm-archive.sources';
const KEYRING = 'kfarm-archive-keyring.gpg';

/** Pure: the apt sources (deb822) of the mirror's suites, signed by the keyring in the build. */
export function archiveSourcesText(source: Pick<ArchiveBuildSource, 'mirrors' | 'suites'>): string {
  const byMirror = new Map<Mirror, string[]>();
  for (const s of source.suites) byMirror.set(s.mirror, [...(byMirror.get(s.mirror) ?? []), s.suite]);
  return [...byMirror.entries()]
    .map(([mirror, suites]) => `Types: deb\nURIs: ${source.mirrors[mirror]}\nSuites: ${suites.join(' ')}\nComponents: main\nSigned-By: ${DIR}/${KEYRING}\n`)
    .join('\n');
}

/**
 * Pure: the recipe's Dockerfile with the mirror's sources in place of the image's own for its
 * steps: put in right after its FROM, Debian's put back (and the keyring removed) after its last
 * step, so images derived from this one use Debian's mirrors as the others do.
 */
export function withArchiveSource(dockerfile: Buffer): Buffer {
  const lines = dockerfile.toString('utf8').split('\n');
  const from = lines.findIndex((l) => /^FROM\s/i.test(l));
  if (from < 0) throw new Error('the kernel recipe has no FROM line');
  const before = [
    `# kfarm: apt reads the mirror kfarm was given (${SOURCES}), trusting the keyring kfarm checked it with`,
    `COPY ${SOURCES} ${KEYRING} ${DIR}/`,
    `RUN set -eu; chmod 644 ${DIR}/*; mv /etc/apt/sources.list.d/debian.sources ${DIR}/debian.sources.orig; cp ${DIR}/${SOURCES} /etc/apt/sources.list.d/debian.sources`,
  ];
  const after = [`RUN set -eu; mv ${DIR}/debian.sources.orig /etc/apt/sources.list.d/debian.sources; rm -rf ${DIR}`];
  const body = lines.slice(from + 1);
  while (body.length > 0 && body.at(-1)?.trim() === '') body.pop();
  return Buffer.from([...lines.slice(0, from + 1), ...before, ...body, ...after, ''].join('\n'));
}

/** label of a kernel image built from another mirror: the mirrors it installed from (Debian's: no label) */
export const LABEL_ARCHIVE = 'io.kfarm.archive';

/** Pure: the label's value: the mirrors of the suites it read, space-separated. */
export function archiveLabel(source: Pick<ArchiveBuildSource, 'mirrors' | 'suites'>): string {
  return [...new Set(source.suites.map((s) => source.mirrors[s.mirror]))].join(' ');
}

/** Pure: the build context files the wrapped Dockerfile copies. */
export function archiveContextFiles(source: ArchiveBuildSource): TarEntry[] {
  return [
    { path: SOURCES, type: 'file', mode: 0o644, data: Buffer.from(archiveSourcesText(source)) },
    { path: KEYRING, type: 'file', mode: 0o644, data: source.keyring },
  ];
}

/** Pure: what of the source an image's cache hash covers: a mirror, suite or key change rebuilds. */
export function archiveSourceHash(source: ArchiveBuildSource): string {
  return createHash('sha256').update(archiveSourcesText(source)).update('\0keyring\0').update(source.keyring).digest('hex');
}

/**
 * Pure: the build's network: the host's when a mirror is on the loopback (the build container's
 * own 127.0.0.1 is not the host's), else Docker's default.
 */
export function archiveBuildNetwork(mirrors: Readonly<Record<Mirror, string>>): 'host' | undefined {
  const loopback = (url: string) => {
    const host = new URL(url).hostname;
    return host === 'localhost' || host === '[::1]' || /^127\./.test(host);
  };
  return Object.values(mirrors).some(loopback) ? 'host' : undefined;
}
