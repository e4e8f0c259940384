import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { changelogRequest, DEFAULT_READ_LIMITS, headersChangelog } from '../../src/service/regressions/headers-changelog.js';
import { seriesWindows } from '../../src/service/regressions/series-windows.js';
import { windowSentence } from '../../src/service/regressions/window-sentence.js';
import { isolatedEnv, kfarm } from '../helpers/kfarm-cli.js';

/**
 * The Debian changelog entries between two kernels of a series, read from the real kfarm kernel
 * images on this host (kfarm images sync builds them): the changelog.Debian.gz of the first bad
 * kernel's headers, from the last good kernel's upload up. Each release keeps it elsewhere
 * (its own doc dir, a symlink to linux-base-<kver>, only the -common package on arm64), and an
 * image without it, or no image at all, is said in the answer, never thrown.
 */
const runtime = new DockerRuntime();
const T = 120_000;
const nodoc = `kfarm/test-nodoc-${randomBytes(4).toString('hex')}`;

/** the kernels whose headers' changelogs the cases read: synced here (images are cached by content, so a held one costs nothing) */
const NEEDED = ['6.1.0-56-amd64', '6.1.0-57-amd64', '6.1.0-57-arm64', '5.10.0-43-amd64', '5.10.0-45-amd64', '7.3.4+deb13-amd64'];

beforeAll(async () => {
  await runtime.ping();
  const env = await isolatedEnv('headers-changelog');
  const sync = await kfarm(['images', 'sync', 'debian-11', 'debian-12', 'debian-13', '--arch', 'amd64,arm64', '--kernels', NEEDED.join(',')], env, 1_800_000);
  expect(sync.exitCode, `${sync.stdout}\n${sync.stderr}`).toBe(0);
  for (const ref of ['kfarm/debian-12:6.1.0-56-amd64', 'kfarm/debian-12:6.1.0-57-amd64', 'kfarm/debian-11:5.10.0-43-amd64', 'kfarm/debian-11:5.10.0-45-amd64']) {
    expect(await runtime.inspectImage(ref), `${ref} is missing after the sync`).toBeDefined();
  }
}, 1_800_000);

afterAll(async () => {
  await runtime.removeImages([`${nodoc}:6.1.0-57-amd64`, `${nodoc}:multi`]);
}, T);

describe('headersChangelog on real kfarm images', () => {
  it(
    'debian-12 amd64: builds on 6.1.0-56-amd64, fails since 6.1.0-57-amd64 -> the one upload between them',
    async () => {
      // the window comes from results as FarmDb holds them, the request from the window
      const base = { buildId: 'b-1', module: 'hello', version: '1.0', release: 'debian-12', arch: 'x86_64', flavour: 'amd64' } as const;
      const [series] = seriesWindows([
        { ...base, kernel: '6.1.0-57-amd64', verdict: 'failed', firstError: "error: 'struct nfsd4_slot' has no member named 'sl_flags'", at: '2026-11-27T10:00:00.000Z' },
        { ...base, kernel: '6.1.0-56-amd64', verdict: 'built', at: '2026-11-20T10:00:00.000Z' },
      ]);
      expect(windowSentence(series!.build!)).toBe('builds on 6.1.0-56-amd64, fails since 6.1.0-57-amd64');
      const request = changelogRequest(series!, series!.build!);
      expect(request).toEqual({ release: 'debian-12', flavour: 'amd64', lastGood: '6.1.0-56-amd64', firstBad: '6.1.0-57-amd64' });
      const log = await headersChangelog(runtime, request!);
      expect(log).toMatchObject({
        lastGood: { kernel: '6.1.0-56-amd64', version: '6.1.192-2' },
        firstBad: { kernel: '6.1.0-57-amd64', version: '6.1.192-3' },
        source: { image: 'kfarm/debian-12:6.1.0-57-amd64', path: '/usr/share/doc/linux-headers-6.1.0-57-amd64/changelog.Debian.gz' },
        complete: true,
        omittedEntries: 0,
      });
      expect(log.note).toBeUndefined();
      expect(log.entries.map((e) => `${e.version} ${e.distribution}`)).toEqual(['6.1.192-3 bookworm-security']);
      expect(log.entries[0]?.body.join('\n')).toContain('nfsd: preflight SEQUENCE replies');
      expect(log.entries[0]?.maintainer).toMatch(/<.+@.+>/);
    },
    T,
  );

  it(
    'debian-11 amd64: 5.10.0-43 -> 5.10.0-45 spans two uploads, newest first',
    async () => {
      const log = await headersChangelog(runtime, { release: 'debian-11', flavour: 'amd64', lastGood: '5.10.0-43-amd64', firstBad: '5.10.0-45-amd64' });
      expect(log.source?.path).toBe('/usr/share/doc/linux-headers-5.10.0-45-amd64/changelog.Debian.gz');
      expect(log.entries.map((e) => e.version)).toEqual(['5.10.259-1', '5.10.257-1']);
      expect(log.complete).toBe(true);
      expect(log.lastGood?.version).toBe('5.10.251-5');
      // one upstream stable update lists hundreds of commits
      expect(log.entries[0]!.body.length).toBeGreaterThan(100);
    },
    T,
  );

  it(
    'arm64 images carry only the -common doc dir; a last good kernel whose image is gone is named by its version',
    async () => {
      const log = await headersChangelog(runtime, {
        release: 'debian-12',
        flavour: 'arm64',
        lastGood: '6.1.0-56-arm64',
        firstBad: '6.1.0-57-arm64',
        versions: { lastGood: '6.1.192-2' },
      });
      expect(log.source?.path).toBe('/usr/share/doc/linux-headers-6.1.0-57-common/changelog.Debian.gz');
      expect(log.entries.map((e) => e.version)).toEqual(['6.1.192-3']);
      expect(log.complete).toBe(true);
    },
    T,
  );

  it(
    'debian-13 reads through the linux-headers -> linux-base symlink, and keeps the unstable upload a backport was made from',
    async () => {
      const log = await headersChangelog(runtime, {
        release: 'debian-13',
        flavour: 'amd64',
        lastGood: '7.3.3+deb13-amd64',
        firstBad: '7.3.4+deb13-amd64',
        versions: { lastGood: '7.3.3-1~bpo13+1' },
      });
      expect(log.source).toEqual({ image: 'kfarm/debian-13:7.3.4_deb13-amd64', path: '/usr/share/doc/linux-headers-7.3.4+deb13-amd64/changelog.Debian.gz' });
      expect(log.entries.map((e) => `${e.version} ${e.distribution}`)).toEqual(['7.3.4-1~bpo13+1 trixie-backports', '7.3.4-1 unstable']);
      expect(log.complete).toBe(true);
    },
    T,
  );

  it(
    'a read cut by its byte limit keeps whole entries and says the span is partial',
    async () => {
      const log = await headersChangelog(
        runtime,
        { release: 'debian-12', flavour: 'amd64', lastGood: '6.1.0-55-amd64', firstBad: '6.1.0-57-amd64', versions: { lastGood: '6.1.190-1' } },
        { ...DEFAULT_READ_LIMITS, readBytes: 1000 },
      );
      // 6.1.192-1 (2,500 lines) starts within the first 1000 bytes and is cut: it is dropped, not shown half
      expect(log.entries.map((e) => e.version)).toEqual(['6.1.192-3', '6.1.192-2']);
      expect(log.complete).toBe(false);
      expect(log.note).toContain('read up to 1000 bytes');
    },
    T,
  );

  it(
    'caps the entries and lines it returns and counts what it left out',
    async () => {
      const log = await headersChangelog(
        runtime,
        { release: 'debian-11', flavour: 'amd64', lastGood: '5.10.0-43-amd64', firstBad: '5.10.0-45-amd64' },
        { ...DEFAULT_READ_LIMITS, entries: 1, lines: 10 },
      );
      expect(log.entries).toHaveLength(1);
      expect(log.entries[0]?.body).toHaveLength(10);
      expect(log.omittedEntries).toBe(1);
      expect(log.omittedLines).toBeGreaterThan(100);
    },
    T,
  );

  it(
    'a kernel without an image here is said, not thrown',
    async () => {
      const log = await headersChangelog(runtime, { release: 'debian-12', flavour: 'amd64', lastGood: '6.1.0-57-amd64', firstBad: '6.1.0-99-amd64' });
      expect(log.entries).toEqual([]);
      expect(log.complete).toBe(false);
      expect(log.note).toContain('no image of debian-12 holds 6.1.0-99-amd64 on this host');
    },
    T,
  );

  it(
    'an image whose headers carry no changelog is said, not thrown',
    async () => {
      // the 6.1.0-57 image with its headers' doc dirs removed (and its image label blanked, so no catalog lists it)
      execFileSync('docker', ['build', '-q', '-t', `${nodoc}:6.1.0-57-amd64`, '-'], {
        input: 'FROM kfarm/debian-12:6.1.0-57-amd64\nLABEL io.kfarm.image=""\nRUN rm -rf /usr/share/doc/linux-headers-*\n',
        stdio: ['pipe', 'ignore', 'pipe'],
      });
      const release = nodoc.slice('kfarm/'.length);
      const log = await headersChangelog(runtime, { release, flavour: 'amd64', lastGood: '6.1.0-56-amd64', firstBad: '6.1.0-57-amd64', versions: { lastGood: '6.1.192-2' } });
      expect(log.entries).toEqual([]);
      expect(log.source).toBeUndefined();
      expect(log.firstBad.version).toBe('6.1.192-3');
      expect(log.note).toContain('carries no changelog');
    },
    T,
  );

  it(
    'finds a kernel in an image of the older many-kernel layout by its labels when its own tag is absent',
    async () => {
      const release = `test-multi-${randomBytes(4).toString('hex')}`;
      execFileSync('docker', ['build', '-q', '-t', `${nodoc}:multi`, '-'], {
        input: `FROM kfarm/debian-12:6.1.0-57-amd64\nLABEL io.kfarm.image="${release}" io.kfarm.kernels="6.1.0-56-amd64 6.1.0-57-amd64"\n`,
        stdio: ['pipe', 'ignore', 'pipe'],
      });
      try {
        const log = await headersChangelog(runtime, { release, flavour: 'amd64', lastGood: '6.1.0-56-amd64', firstBad: '6.1.0-57-amd64', versions: { lastGood: '6.1.192-2' } });
        expect(log.source?.image).toBe(`${nodoc}:multi`);
        // a many-kernel image's headers-version label is not one kernel's: the changelog's newest entry names it
        expect(log.firstBad.version).toBe('6.1.192-3');
        expect(log.entries.map((e) => e.version)).toEqual(['6.1.192-3']);
      } finally {
        await runtime.removeImages([`${nodoc}:multi`]);
      }
    },
    T,
  );

  it('refuses names kfarm never gives (they make an image reference and a path) without running anything', async () => {
    const log = await headersChangelog(runtime, { release: 'debian-12', flavour: 'amd64', firstBad: '6.1.0-57-amd64 ../../etc' });
    expect(log.entries).toEqual([]);
    expect(log.note).toContain('not a release and kernel kfarm names');
  });
});
