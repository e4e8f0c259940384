import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARCHIVE_KEYRING_MISSING, ARCHIVE_UNREACHABLE, DEBIAN_KEYRING, fetchReleaseFile, usableKeyring } from '../../src/archive/index-store.js';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import { discoverKernels } from '../../src/archive/discover.js';
import { checkFetchable } from '../../src/archive/fetchability.js';
import { RELEASES } from '../../src/archive/releases.js';
import { readEnv } from '../../src/config/env.js';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import pino from 'pino';
import { packageRoot } from '../../src/paths.js';
import { tempDir } from '../helpers/kfarm-cli.js';
import { testKeyring, type TestKeyring } from '../helpers/test-keyring.js';

/**
 * A real HTTP server laid out like deb.debian.org, serving the recorded bullseye indexes
 * (xz-compressed by the real xz) and pool files: 5.10.0-43 answers 404, as the archive did.
 * Its InRelease files are clearsigned by a test key (real gpg), and kfarm checks them with gpgv
 * against a keyring holding that key: no test reads an index unverified.
 */
const fixture = (name: string) => readFileSync(path.join(packageRoot, 'test', 'fixtures', 'archive', name));
const xz = async (data: Buffer) => Buffer.from((await execa('xz', ['-c'], { input: data, encoding: 'buffer' })).stdout);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let server: http.Server;
let keys: TestKeyring;
const release = (suite: string, compressed: Buffer, date = 'Sat, 28 Nov 2026 00:00:00 UTC') =>
  `Codename: ${suite}\nDate: ${date}\nSHA256:\n ${sha(compressed)} ${compressed.length} main/binary-amd64/Packages.xz\n`;
let base: string;
const hits: string[] = [];
const files = new Map<string, Buffer>();
const poolSizes = new Map<string, number>();

beforeAll(async () => {
  keys = await testKeyring();
  const suites: Array<[string, string, Buffer]> = [
    ['debian', 'bullseye', fixture('bullseye-amd64.Packages')],
    ['debian-security', 'bullseye-security', fixture('bullseye-security-amd64.Packages')],
    ['debian', 'bullseye-updates', Buffer.alloc(0)],
  ];
  for (const [mirror, suite, packages] of suites) {
    // the pool: each listed file, as long as its index says
    for (const stanza of packages.toString().split('\n\n')) {
      const file = /^Filename: (.+)$/m.exec(stanza)?.[1];
      const size = /^Size: (\d+)$/m.exec(stanza)?.[1];
      if (file && size) poolSizes.set(`/${mirror}/${file}`, Number(size));
    }
    const compressed = await xz(packages);
    files.set(`/${mirror}/dists/${suite}/main/binary-amd64/Packages.xz`, compressed);
    files.set(`/${mirror}/dists/${suite}/InRelease`, await keys.clearsign(release(suite, compressed)));
  }
  server = http.createServer((req, res) => {
    const url = req.url ?? '';
    hits.push(`${req.method} ${url}`);
    const body = files.get(url);
    if (body) {
      res.writeHead(200, { 'content-length': body.length }).end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const length = poolSizes.get(decodeURIComponent(url)) ?? poolSizes.get(url) ?? (/_(\d+)\.deb$/.exec(url)?.[1] ? Number(/_(\d+)\.deb$/.exec(url)?.[1]) : undefined);
    if (length !== undefined && !url.includes('5.10.0-43-')) {
      res.writeHead(200, { 'content-length': length }).end();
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await keys.close();
});

const debian11 = RELEASES.filter((r) => r.name === 'debian-11');
const options = async () => ({
  cacheDir: await tempDir('archive'),
  logger: pino({ level: 'silent' }),
  mirrors: { debian: `${base}/debian`, 'debian-security': `${base}/debian-security` },
  keyring: keys.keyring,
});

describe('discovery against an archive served over HTTP', () => {
  it('lists the kernels, marks a listed-but-gone file unfetchable without failing, and serves a second call from its cache', async () => {
    const opts = await options();
    const first = await discoverKernels(debian11, ['amd64'], opts);
    expect(first.kernels).toHaveLength(33);
    const gone = first.kernels.filter((k) => !k.fetch.fetchable);
    expect(gone.map((k) => k.kernel).sort()).toEqual(['5.10.0-43-amd64', '5.10.0-43-cloud-amd64', '5.10.0-43-rt-amd64']);
    expect(gone[0]?.fetch).toEqual({ fetchable: false, reason: 'HTTP 404' });
    expect(first.indexes.every((i) => !i.fromCache)).toBe(true);
    expect(first.indexes.find((i) => i.suite === 'bullseye')?.date).toBe('Sat, 28 Nov 2026 00:00:00 UTC');

    hits.length = 0;
    const second = await discoverKernels(debian11, ['amd64'], opts);
    expect(second.indexes.every((i) => i.fromCache)).toBe(true);
    expect(hits.filter((h) => h.includes('Packages.xz'))).toEqual([]);
    expect(second.kernels.map((k) => k.kernel)).toEqual(first.kernels.map((k) => k.kernel));
  });

  it('refetches an index whose checksum in InRelease changed', async () => {
    const opts = await options();
    await discoverKernels(debian11, ['amd64'], { ...opts, checkFetch: false });
    const key = '/debian/dists/bullseye/main/binary-amd64/Packages.xz';
    const saved = [files.get(key), files.get('/debian/dists/bullseye/InRelease')] as const;
    const changed = await xz(Buffer.from(fixture('bullseye-amd64.Packages').toString().replaceAll('Version: 5.10.218-1', 'Version: 5.10.218-2')));
    files.set(key, changed);
    files.set('/debian/dists/bullseye/InRelease', await keys.clearsign(release('bullseye', changed, 'later')));
    try {
      const again = await discoverKernels(debian11, ['amd64'], { ...opts, checkFetch: false });
      expect(again.indexes.find((i) => i.suite === 'bullseye')?.fromCache).toBe(false);
      expect(again.kernels.find((k) => k.kernel === '5.10.0-30-amd64')?.version).toBe('5.10.218-2');
    } finally {
      files.set(key, saved[0] as Buffer);
      files.set('/debian/dists/bullseye/InRelease', saved[1] as Buffer);
    }
  });

  it('refuses an index that does not match its checksum', async () => {
    const opts = await options();
    const key = '/debian-security/dists/bullseye-security/main/binary-amd64/Packages.xz';
    const saved = files.get(key) as Buffer;
    files.set(key, await xz(Buffer.from('Package: linux-headers-9.9.9-1-amd64\n')));
    try {
      await expect(discoverKernels(debian11, ['amd64'], opts)).rejects.toSatisfy((err) => isKfarmError(err, 'COMMAND_FAILED') && /checksum/.test(err.message));
    } finally {
      files.set(key, saved);
    }
  });

  it('refuses an InRelease whose signature does not verify against the Debian keyring', async () => {
    const opts = await options();
    const key = '/debian-security/dists/bullseye-security/InRelease';
    const saved = files.get(key) as Buffer;
    files.set(key, fixture('bullseye-security.InRelease')); // the real signed file, trimmed: the signature no longer matches
    try {
      // Debian's keys next to the test key that signs the other suites (binary keyrings concatenate)
      const both = path.join(await tempDir('keyrings'), 'both.gpg');
      await writeFile(both, Buffer.concat([readFileSync(DEBIAN_KEYRING), readFileSync(keys.keyring)]));
      await expect(discoverKernels(debian11, ['amd64'], { ...opts, keyring: both })).rejects.toSatisfy(
        (err) => isKfarmError(err, 'ARCHIVE_UNVERIFIED') && /no valid signature/.test(err.message) && /BAD signature/.test(err.message),
      );
    } finally {
      files.set(key, saved);
    }
  });

  it('an unreachable archive is COMMAND_FAILED naming the URL', async () => {
    const opts = await options();
    const closed = 'http://127.0.0.1:9'; // discard port: nothing listens
    await expect(discoverKernels(debian11, ['amd64'], { ...opts, mirrors: { debian: `${closed}/debian`, 'debian-security': `${closed}/debian-security` } })).rejects.toSatisfy(
      (err) => isKfarmError(err, 'COMMAND_FAILED') && err.message.includes('unreachable') && err.message.includes('127.0.0.1:9') && err.context.reason === ARCHIVE_UNREACHABLE,
    );
  });
});

describe('an archive kfarm cannot verify is not read', () => {
  const served = async (name: string, body: Buffer) => {
    files.set(`/t/dists/${name}/InRelease`, body);
    const opts = await options();
    return () => fetchReleaseFile(`${base}/t`, name, opts);
  };

  it('no keyring: exit 3 before any download, naming debian-archive-keyring and KFARM_ARCHIVE_KEYRING', async () => {
    for (const keyring of ['/nonexistent/debian-archive-keyring.gpg', await tempDir('no-keyring')]) {
      hits.length = 0;
      const err = await discoverKernels(debian11, ['amd64'], { ...(await options()), keyring }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isKfarmError(err, 'ARCHIVE_UNVERIFIED'), String(err)).toBe(true);
      if (!isKfarmError(err)) return;
      expect(exitCodeFor(err.code)).toBe(3);
      expect(err.context.reason).toBe(ARCHIVE_KEYRING_MISSING);
      expect(err.message).toBe(`cannot verify the Debian archive: no keyring at ${keyring}`);
      expect(err.hint).toContain('apt-get install debian-archive-keyring');
      expect(err.hint).toContain('KFARM_ARCHIVE_KEYRING');
      expect(hits).toEqual([]);
    }
  });

  it('the keyring: the caller’s, else $KFARM_ARCHIVE_KEYRING, else Debian’s (setup.sh installs it)', async () => {
    expect(readEnv({ KFARM_ARCHIVE_KEYRING: keys.keyring }).archiveKeyring).toBe(keys.keyring);
    expect(readEnv({}).archiveKeyring).toBeUndefined();
    expect(await usableKeyring(undefined, { archiveKeyring: keys.keyring })).toBe(keys.keyring);
    expect(await usableKeyring(keys.keyring, { archiveKeyring: '/nonexistent/k.gpg' })).toBe(keys.keyring);
    await expect(usableKeyring(undefined, { archiveKeyring: '/nonexistent/k.gpg' })).rejects.toThrow('no keyring at /nonexistent/k.gpg');
    expect(await usableKeyring(undefined, { archiveKeyring: undefined })).toBe(DEBIAN_KEYRING);
  });

  it('refuses an unsigned InRelease, and one signed only by a key the keyring lacks', async () => {
    const text = 'Codename: s\nSHA256:\n ' + 'a'.repeat(64) + ' 1 main/binary-amd64/Packages.xz\n';
    await expect((await served('unsigned', Buffer.from(text)))()).rejects.toSatisfy((err) => isKfarmError(err, 'ARCHIVE_UNVERIFIED') && /no valid signature/.test(err.message));
    await expect((await served('stranger', await keys.clearsign(text, ['stranger'])))()).rejects.toSatisfy(
      (err) => isKfarmError(err, 'ARCHIVE_UNVERIFIED') && /signed only by keys the keyring does not hold/.test(err.message),
    );
    const edited = (await keys.clearsign(text)).toString().replace('a'.repeat(64), 'b'.repeat(64));
    await expect((await served('edited', Buffer.from(edited)))()).rejects.toSatisfy((err) => isKfarmError(err, 'ARCHIVE_UNVERIFIED') && /BAD signature/.test(err.message));
  });

  it('accepts one good signature among keys the keyring lacks, as apt does (a keyring older than the archive’s keys)', async () => {
    const text = 'Codename: both\nSHA256:\n ' + 'c'.repeat(64) + ' 7 main/binary-amd64/Packages.xz\n';
    const file = await (await served('both', await keys.clearsign(text, ['stranger', 'archive'])))();
    expect(file?.codename).toBe('both');
    expect(file?.sha256.get('main/binary-amd64/Packages.xz')).toEqual({ sha256: 'c'.repeat(64), size: 7 });
  });

  it('reads only what the signature covers: text around the signed block is ignored', async () => {
    const signed = await keys.clearsign('Codename: real\nSHA256:\n ' + 'd'.repeat(64) + ' 9 main/binary-amd64/Packages.xz\n');
    const injected = 'Codename: evil\nSHA256:\n ' + 'e'.repeat(64) + ' 9 main/binary-amd64/Packages.xz\n\n';
    const file = await (await served('injected', Buffer.concat([Buffer.from(injected), signed])))();
    expect(file?.codename).toBe('real');
    expect(file?.sha256.get('main/binary-amd64/Packages.xz')?.sha256).toBe('d'.repeat(64));
  });
});

describe('fetchability checks', () => {
  it('says why each candidate cannot be fetched: 404, another size, no answer in time, refused', async () => {
    const slow = http.createServer(() => undefined); // accepts, never answers
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    const slowUrl = `http://127.0.0.1:${(slow.address() as AddressInfo).port}/x.deb`;
    try {
      const started = Date.now();
      const result = await checkFetchable(
        [
          { url: `${base}/debian/pool/main/l/linux/a_100.deb`, size: 100 },
          { url: `${base}/debian/pool/main/l/linux/linux-headers-5.10.0-43-amd64_1.deb`, size: 1 },
          { url: `${base}/debian/pool/main/l/linux/b_100.deb`, size: 99 },
          { url: slowUrl, size: 1 },
          { url: 'http://127.0.0.1:9/x.deb', size: 1 },
        ],
        { timeoutMs: 1000, concurrency: 2 },
      );
      expect(result[0]).toEqual({ fetchable: true });
      expect(result[1]).toEqual({ fetchable: false, reason: 'HTTP 404' });
      expect(result[2]).toEqual({ fetchable: false, reason: 'the archive serves 100 bytes, the index says 99' });
      expect(result[3]).toEqual({ fetchable: false, reason: 'no answer in 1 s' });
      expect(result[4]).toMatchObject({ fetchable: false, reason: expect.stringContaining('ECONNREFUSED') });
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      slow.closeAllConnections();
      slow.close();
    }
  });
});
