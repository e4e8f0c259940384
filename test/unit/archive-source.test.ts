import { describe, expect, it } from 'vitest';
import { DEFAULT_ARCHIVE_SOURCE, archiveCacheDir, resolveArchiveSource, usesDebianMirrors } from '../../src/archive/archive-source.js';
import { DEFAULT_MIRRORS, RELEASES } from '../../src/archive/releases.js';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import {
  archiveBuildNetwork,
  archiveContextFiles,
  archiveLabel,
  archiveSourceHash,
  archiveSourcesText,
  withArchiveSource,
  type ArchiveBuildSource,
} from '../../src/images/archive-recipe.js';
import { compareOffers, offerKey } from '../../src/service/watch/archive-offers.js';
import { loadRecipe } from '../../src/images/image-builder.js';

const local = { debian: 'http://127.0.0.1:8080/debian', 'debian-security': 'http://127.0.0.1:8080/debian-security' };
const bookworm = RELEASES.find((r) => r.name === 'debian-12');
const source = (over: Partial<ArchiveBuildSource> = {}): ArchiveBuildSource => ({
  mirrors: local,
  keyring: Buffer.from('key-1'),
  suites: bookworm?.suites.filter((s) => s.suite === 'bookworm' || s.suite === 'bookworm-security') ?? [],
  ...over,
});

describe('the archive source (--mirror, --security-mirror, --keyring)', () => {
  it("is Debian's by default, and knows a mirror that is not", () => {
    expect(resolveArchiveSource({})).toEqual(DEFAULT_ARCHIVE_SOURCE);
    expect(usesDebianMirrors(DEFAULT_MIRRORS)).toBe(true);
    expect(usesDebianMirrors({ ...DEFAULT_MIRRORS, 'debian-security': local['debian-security'] })).toBe(false);
    expect(resolveArchiveSource({ mirror: 'http://m.local/debian/', keyring: '/k.gpg' })).toEqual({
      mirrors: { ...DEFAULT_MIRRORS, debian: 'http://m.local/debian' },
      keyring: '/k.gpg',
    });
  });

  it("caches Debian's indexes where it always did, and each other mirror's apart", () => {
    expect(archiveCacheDir('/s', DEFAULT_MIRRORS)).toBe('/s/archive');
    const one = archiveCacheDir('/s', local);
    expect(one).toMatch(/^\/s\/archive\/mirrors\/[0-9a-f]{16}$/);
    expect(archiveCacheDir('/s', { ...local, debian: 'http://127.0.0.1:9/debian' })).not.toBe(one);
  });

  it('refuses an empty --keyring as bad input', () => {
    const err = (() => {
      try {
        return resolveArchiveSource({ keyring: ' ' });
      } catch (e) {
        return e;
      }
    })();
    expect(isKfarmError(err, 'BAD_OPTION')).toBe(true);
  });
});

describe('a kernel recipe built from another mirror (archive-recipe)', () => {
  it("points apt at the mirror's served suites only, each signed by the keyring in the build", () => {
    expect(archiveSourcesText(source())).toBe(
      [
        'Types: deb\nURIs: http://127.0.0.1:8080/debian\nSuites: bookworm\nComponents: main\nSigned-By: /etc/kfarm-archive/kfarm-archive-keyring.gpg\n',
        'Types: deb\nURIs: http://127.0.0.1:8080/debian-security\nSuites: bookworm-security\nComponents: main\nSigned-By: /etc/kfarm-archive/kfarm-archive-keyring.gpg\n',
      ].join('\n'),
    );
    expect(archiveContextFiles(source()).map((f) => f.path)).toEqual(['kfarm-archive.sources', 'kfarm-archive-keyring.gpg']);
    expect(archiveLabel(source())).toBe('http://127.0.0.1:8080/debian http://127.0.0.1:8080/debian-security');
  });

  it("swaps the sources in right after FROM and puts Debian's back after the recipe's last step", async () => {
    for (const recipe of ['debian-11', 'debian-12', 'debian-13']) {
      const { kernel: original } = await loadRecipe(recipe);
      const lines = withArchiveSource(original).toString().trimEnd().split('\n');
      const from = lines.findIndex((l) => l.startsWith('FROM '));
      expect(lines[from + 2]).toBe('COPY kfarm-archive.sources kfarm-archive-keyring.gpg /etc/kfarm-archive/');
      expect(lines[from + 3]).toContain('cp /etc/kfarm-archive/kfarm-archive.sources /etc/apt/sources.list.d/debian.sources');
      expect(lines.at(-1)).toBe('RUN set -eu; mv /etc/kfarm-archive/debian.sources.orig /etc/apt/sources.list.d/debian.sources; rm -rf /etc/kfarm-archive');
      // the recipe's own lines are all there, in order
      const own = original.toString().trimEnd().split('\n');
      expect(lines.filter((l) => own.includes(l))).toEqual(own);
    }
  });

  it('hashes the mirror, its suites and the key: any change rebuilds', () => {
    const base = archiveSourceHash(source());
    expect(archiveSourceHash(source())).toBe(base);
    expect(archiveSourceHash(source({ keyring: Buffer.from('key-2') }))).not.toBe(base);
    expect(archiveSourceHash(source({ mirrors: { ...local, debian: 'http://127.0.0.1:9090/debian' } }))).not.toBe(base);
    expect(archiveSourceHash(source({ suites: source().suites.slice(0, 1) }))).not.toBe(base);
  });

  it("builds on the host's network only for a mirror on the loopback", () => {
    expect(archiveBuildNetwork(local)).toBe('host');
    expect(archiveBuildNetwork({ ...DEFAULT_MIRRORS, debian: 'http://localhost:3142/debian' })).toBe('host');
    expect(archiveBuildNetwork({ ...DEFAULT_MIRRORS, debian: 'http://[::1]/debian' })).toBe('host');
    expect(archiveBuildNetwork({ ...DEFAULT_MIRRORS, debian: 'http://mirror.lan/debian' })).toBeUndefined();
  });
});

describe("the watch's comparison of offers", () => {
  const k = (kernel: string, version = '1') => ({ release: 'debian-12', arch: 'amd64', kernel, version });
  it('reports the first look as a change with every kernel added', () => {
    expect(compareOffers(undefined, [k('a')])).toEqual({ changed: true, added: [k('a')], removed: [] });
  });
  it('reports nothing for the same offers, and a new kernel, a new upload or a kernel gone as changes', () => {
    const before = [k('a'), k('b')].map(offerKey);
    expect(compareOffers(before, [k('b'), k('a')])).toEqual({ changed: false, added: [], removed: [] });
    expect(compareOffers(before, [k('a'), k('b'), k('c')])).toEqual({ changed: true, added: [k('c')], removed: [] });
    expect(compareOffers(before, [k('a'), k('b', '2')])).toEqual({ changed: true, added: [k('b', '2')], removed: ['debian-12/amd64/b=1'] });
    expect(compareOffers(before, [k('a')])).toEqual({ changed: true, added: [], removed: ['debian-12/amd64/b=1'] });
  });
});
