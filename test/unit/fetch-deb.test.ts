import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseStanzas } from '../../src/archive/deb822.js';
import { fetchDeb, fetchFirstDeb, newestDeb, type DebEntry } from '../../src/archive/fetch-deb.js';
import { tempDir } from '../helpers/kfarm-cli.js';

/** A real HTTP server standing in for a mirror's pool/: it serves `body` and counts requests. */
const body = Buffer.from('!<arch>\nnot really a deb, only bytes with a known hash\n');
const sha = createHash('sha256').update(body).digest('hex');
let server: http.Server;
let base: string;
let hits = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    hits++;
    if (req.url?.includes('/gone/')) res.statusCode = 404;
    res.end(req.url?.includes('/gone/') ? '' : body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/debian`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const entry = (sha256: string): DebEntry => ({ package: 'busybox-static', version: '1', url: `${base}/pool/main/b/busybox/b.deb`, sha256, size: body.length });

describe('fetchDeb', () => {
  it("refuses a .deb whose sha256 is not the index's, and keeps nothing", async () => {
    const debDir = await tempDir('fetch-deb');
    const err = await fetchDeb(entry('e'.repeat(64)), debDir).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'COMMAND_FAILED', message: expect.stringContaining(`sha256 ${sha.slice(0, 12)}… not the index's eeeeeeeeeeee…`) });
    expect(existsSync(debDir) ? await readdir(debDir) : []).toEqual([]);
  });

  it('keeps a matching .deb by its sha256; the next call downloads nothing; a cached file altered since is fetched again', async () => {
    const debDir = await tempDir('fetch-deb');
    const file = await fetchDeb(entry(sha), debDir);
    expect(file).toBe(path.join(debDir, `${sha}.deb`));
    expect(await readFile(file)).toEqual(body);
    const before = hits;
    expect(await fetchDeb(entry(sha), debDir)).toBe(file);
    expect(hits).toBe(before);
    await writeFile(file, 'tampered');
    expect(await fetchDeb(entry(sha), debDir)).toBe(file);
    expect(hits).toBe(before + 1);
    expect(await readFile(file)).toEqual(body);
  });
});

describe('fetchFirstDeb', () => {
  const logger = pino({ level: 'silent' });
  it('takes the next candidate when the newest is listed but gone (HTTP 404), and fails with the first error when none downloads', async () => {
    const debDir = await tempDir('fetch-deb');
    const gone = { ...entry(sha), version: '2', url: `${base}/pool/gone/b.deb`, sha256: 'f'.repeat(64) };
    expect(await fetchFirstDeb([gone, entry(sha)], debDir, logger)).toEqual({ entry: entry(sha), file: path.join(debDir, `${sha}.deb`) });
    await expect(fetchFirstDeb([gone, entry('e'.repeat(64))], await tempDir('fetch-deb'), logger)).rejects.toMatchObject({ message: expect.stringContaining('HTTP 404') });
  });
});

describe('newestDeb', () => {
  const stanza = (version: string, filename: string) =>
    parseStanzas(`Package: busybox-static\nVersion: ${version}\nFilename: ${filename}\nSize: 9\nSHA256: ${'a'.repeat(64)}\n`)[0]!;
  it('takes the newest version and only pool/ paths of the mirror', () => {
    const stanzas = [
      { stanza: stanza('1:1.35.0-4+b3', 'pool/main/b/busybox/old.deb'), baseUrl: 'http://m/debian' },
      { stanza: stanza('1:1.35.0-4+deb12u1+b1', 'pool/main/b/busybox/new.deb'), baseUrl: 'http://m/debian-security' },
      { stanza: stanza('1:9', '../../evil.deb'), baseUrl: 'http://m/debian' },
      { stanza: stanza('1:8', '/etc/passwd.deb'), baseUrl: 'http://m/debian' },
    ];
    expect(newestDeb(stanzas, 'busybox-static')).toMatchObject({ version: '1:1.35.0-4+deb12u1+b1', url: 'http://m/debian-security/pool/main/b/busybox/new.deb' });
    expect(newestDeb(stanzas, 'busybox')).toBeUndefined();
  });
});
