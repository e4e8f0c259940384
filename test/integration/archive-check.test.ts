import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { resolveReleases } from '../../src/archive/releases.js';
import { checkArchive } from '../../src/service/watch/archive-check.js';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { tempDir } from '../helpers/kfarm-cli.js';
import { debianKernels, startTestMirror, type TestMirror } from '../helpers/test-mirror.js';

/** kfarm serve's watch against a mirror on this machine (test/helpers/test-mirror.ts): Debian's real stanzas, a test key. */
let FIRST: string;
let SECOND: string;
const logger = pino({ level: 'silent' });
const releases = resolveReleases(['debian-12']);

let mirror: TestMirror;
let stateDir: string;
const source = () => ({ mirrors: { debian: mirror.url, 'debian-security': mirror.securityUrl }, keyring: mirror.keyringFile });

beforeAll(async () => {
  // two generic kernels Debian offers today, the first from bookworm itself (the mirror's other suites then answer 404)
  const generic = (await debianKernels({ release: 'debian-12', arch: 'amd64' })).filter((k) => k.flavour === 'amd64');
  FIRST = generic.find((k) => k.suite === 'bookworm')?.kernel ?? 'none';
  SECOND = generic.find((k) => k.kernel !== FIRST)?.kernel ?? 'none';
  mirror = await startTestMirror({ release: 'debian-12', arch: 'amd64', kernels: [FIRST] });
  stateDir = await tempDir('archive-check');
}, 600_000);
afterAll(async () => mirror?.close());

describe('checkArchive against a test mirror', () => {
  it('reports the first look as a change, then an unchanged archive for one InRelease GET per suite', async () => {
    const first = await checkArchive(source(), releases, ['amd64'], stateDir, logger);
    expect(first.kernels.map((k) => k.kernel)).toEqual([FIRST]);
    expect(first).toMatchObject({ changed: true, first: true, downloaded: 1 });
    // the suites the mirror lacks answered 404 and were left out, not failed
    expect(first.warnings.join('\n')).toContain('bookworm-security');

    mirror.requests.length = 0;
    const again = await checkArchive(source(), releases, ['amd64'], stateDir, logger);
    expect(again).toMatchObject({ changed: false, first: false, downloaded: 0, added: [], removed: [] });
    expect(again.kernels.map((k) => k.kernel)).toEqual([FIRST]);
    const suites = releases[0]?.suites.length ?? 0;
    expect(mirror.requests.map((r) => `${r.method} ${r.path.replace(/^\/[^/]+\/dists\/([^/]+)\/InRelease$/, '$1')}`).sort()).toEqual(
      releases[0]?.suites.map((s) => `GET ${s.suite}`).sort(),
    );
    expect(mirror.requests).toHaveLength(suites);
  });

  it('reports a kernel added to the mirror as the one change, downloading only its suite index', async () => {
    await mirror.addKernel(SECOND);
    mirror.requests.length = 0;
    const check = await checkArchive(source(), releases, ['amd64'], stateDir, logger);
    expect(check.changed).toBe(true);
    expect(check.added.map((k) => k.kernel)).toEqual([SECOND]);
    expect(check.kernels.map((k) => k.kernel).sort()).toEqual([FIRST, SECOND].sort());
    expect(check.downloaded).toBe(1);
    expect(mirror.requests.filter((r) => r.path.endsWith('/Packages.xz'))).toHaveLength(1);
  });

  it('refuses indexes signed by a key it was not told to trust, and keeps its record', async () => {
    await mirror.signWith('stranger');
    try {
      const err = await checkArchive(source(), releases, ['amd64'], stateDir, logger).catch((e: unknown) => e);
      expect(isKfarmError(err, 'ARCHIVE_UNVERIFIED')).toBe(true);
    } finally {
      await mirror.signWith('archive');
    }
    const after = await checkArchive(source(), releases, ['amd64'], stateDir, logger);
    expect(after.changed).toBe(false);
  });
});
