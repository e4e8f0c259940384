import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { KfarmError } from '../../src/errors/kfarm-error.js';
import type { FarmDb, ResultRow } from '../../src/service/farm-db.js';
import { tokenHash } from '../../src/service/db/ids.js';
import { MIGRATIONS } from '../../src/service/db/migrations.js';
import { farmDbPath, openFarmDb } from '../../src/service/db/open-farm-db.js';

const require = createRequire(import.meta.url);
const root = mkdtempSync(path.join(tmpdir(), 'kfarm-farm-db-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshFile = () => path.join(root, `s${++n}`, 'service', 'farm.db');
const opened: FarmDb[] = [];
const open = (file = freshFile()) => {
  const db = openFarmDb(file);
  opened.push(db);
  return db;
};
afterEach(() => {
  for (const db of opened.splice(0))
    try {
      db.close();
    } catch {
      // closed by the test
    }
  vi.useRealTimers();
});

/** What openFarmDb threw (a test fails if it threw nothing). */
function failure(fn: () => unknown): KfarmError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KfarmError);
    return err as KfarmError;
  }
  throw new Error('expected a KfarmError, nothing was thrown');
}

const result = (buildId: string, kernel: string, over: Partial<ResultRow> = {}): ResultRow => ({
  buildId,
  module: 'hello',
  version: '1.0.0',
  kernel,
  release: 'debian-12',
  arch: 'x86_64',
  flavour: 'amd64',
  verdict: 'built',
  at: new Date().toISOString(),
  ...over,
});
const kernel = (k: string, release = 'debian-12', arch = 'amd64') => ({ kernel: k, release, arch, flavour: 'amd64', version: `${k}-1` });

describe('farm database (SQLite)', () => {
  it('lives in <state>/service/farm.db, owner-only, in WAL mode with foreign keys and a busy timeout', () => {
    expect(farmDbPath('/var/lib/kfarm')).toBe('/var/lib/kfarm/service/farm.db');
    const db = open();
    expect(statSync(db.file).mode & 0o777).toBe(0o600);
    const raw = new Database(db.file);
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(raw.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    raw.close();
    // the connection's own settings: a result of an unknown build is refused (foreign key)
    expect(() => db.results.record([result('b-nope', '6.1.0-1-amd64')])).toThrow(/FOREIGN KEY/);
  });

  it("a write waits for another process's write lock (busy_timeout) instead of failing at once", async () => {
    const db = open();
    // another process (kfarm serve, kfarm tokens) holds the write lock for 700 ms
    const holder = spawn(
      process.execPath,
      [
        '-e',
        `const D = require(${JSON.stringify(require.resolve('better-sqlite3'))}); const db = new D(process.argv[1]); db.exec('BEGIN IMMEDIATE');
         process.stdout.write('locked\\n'); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 700); db.exec('COMMIT'); db.close();`,
        db.file,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
    const started = Date.now();
    expect(db.tokens.create('late', ['read']).row.name).toBe('late');
    expect(Date.now() - started).toBeGreaterThan(300);
    await new Promise((resolve) => holder.once('exit', resolve));
  });

  describe('tokens', () => {
    it('creates kfarm_<43 base64url> tokens that verify, keeps only their sha256, and lists no hash', () => {
      const db = open();
      const { token, row } = db.tokens.create('ci-runner', ['submit', 'read']);
      expect(token).toMatch(/^kfarm_[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(token.slice(6), 'base64url')).toHaveLength(32);
      expect(row).toMatchObject({ name: 'ci-runner', scopes: ['read', 'submit'] });
      expect(db.tokens.verify(token)).toMatchObject({ id: row.id, name: 'ci-runner', scopes: ['read', 'submit'] });

      const listed = JSON.stringify(db.tokens.list());
      expect(db.tokens.list()).toEqual([expect.objectContaining({ id: row.id, name: 'ci-runner' })]);
      expect(listed).not.toContain(tokenHash(token));
      expect(listed).not.toContain(token);
      expect(Object.keys(db.tokens.list()[0] ?? {})).not.toContain('hash');
      db.close();
      const bytes = readFileSync(db.file).toString('latin1');
      expect(bytes).toContain(tokenHash(token));
      expect(bytes).not.toContain(token.slice(6));
    });

    it('refuses a changed token, another token and what is not a token', () => {
      const db = open();
      const { token } = db.tokens.create('a', ['read']);
      const last = token.at(-1) === 'A' ? 'B' : 'A';
      expect(db.tokens.verify(token.slice(0, -1) + last)).toBeUndefined();
      expect(db.tokens.verify(`${token}x`)).toBeUndefined();
      expect(db.tokens.verify(token.slice(0, -1))).toBeUndefined();
      expect(db.tokens.verify(tokenHash(token))).toBeUndefined();
      expect(db.tokens.verify("kfarm_' OR 1=1 --")).toBeUndefined();
      expect(db.tokens.verify('')).toBeUndefined();
      expect(db.tokens.verify(open().tokens.create('b', ['admin']).token)).toBeUndefined();
    });

    it('records the last use at most once a minute', () => {
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(new Date('2026-12-08T00:00:00Z'));
      const db = open();
      const { token } = db.tokens.create('a', ['read']);
      expect(db.tokens.list()[0]?.lastUsedAt).toBeUndefined();
      expect(db.tokens.verify(token)?.lastUsedAt).toBe('2026-12-08T00:00:00.000Z');
      vi.setSystemTime(new Date('2026-12-08T00:00:59Z'));
      expect(db.tokens.verify(token)?.lastUsedAt).toBe('2026-12-08T00:00:00.000Z');
      vi.setSystemTime(new Date('2026-12-08T00:01:01Z'));
      expect(db.tokens.verify(token)?.lastUsedAt).toBe('2026-12-08T00:01:01.000Z');
      expect(db.tokens.list()[0]?.lastUsedAt).toBe('2026-12-08T00:01:01.000Z');
    });

    it('validates scopes and names, and a revoked token no longer verifies', () => {
      const db = open();
      expect(failure(() => db.tokens.create('a', ['read', 'root' as 'read'])).message).toMatch(/unknown "root"/);
      expect(failure(() => db.tokens.create('a', [])).code).toBe('BAD_OPTION');
      expect(failure(() => db.tokens.create(' ', ['read'])).code).toBe('BAD_OPTION');
      expect(failure(() => db.tokens.create('a\nb', ['read'])).code).toBe('BAD_OPTION');
      expect(db.tokens.list()).toEqual([]);
      const { token, row } = db.tokens.create('a', ['admin', 'read', 'admin']);
      expect(row.scopes).toEqual(['read', 'admin']);
      expect(db.tokens.revoke(row.id)).toBe(true);
      expect(db.tokens.revoke(row.id)).toBe(false);
      expect(db.tokens.verify(token)).toBeUndefined();
      expect(db.tokens.list()).toEqual([]);
    });
  });

  it('modules: upsert registers then updates (createdAt kept), get, list by name, remove', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-12-08T00:00:00Z'));
    const db = open();
    const first = db.modules.upsert({ name: 'hello', version: '1.0.0', sourceSha256: 'a'.repeat(64), settings: { formats: ['bmdeb'] } });
    expect(first).toEqual({
      name: 'hello',
      version: '1.0.0',
      sourceSha256: 'a'.repeat(64),
      settings: { formats: ['bmdeb'] },
      createdAt: '2026-12-08T00:00:00.000Z',
      updatedAt: '2026-12-08T00:00:00.000Z',
    });
    vi.setSystemTime(new Date('2026-12-08T01:00:00Z'));
    const settings = { formats: [], kernels: 'release:debian-12', publish: { apt: '/srv/apt' } };
    const second = db.modules.upsert({ name: 'hello', version: '1.1.0', sourceSha256: 'b'.repeat(64), settings });
    expect(second).toMatchObject({ version: '1.1.0', sourceSha256: 'b'.repeat(64), settings, createdAt: '2026-12-08T00:00:00.000Z', updatedAt: '2026-12-08T01:00:00.000Z' });
    db.modules.upsert({ name: 'alpha', version: '2', sourceSha256: 'c'.repeat(64), settings: { formats: [] } });
    expect(db.modules.get('hello')).toEqual(second);
    expect(db.modules.get('nope')).toBeUndefined();
    expect(db.modules.list().map((m) => m.name)).toEqual(['alpha', 'hello']);
    expect(db.modules.remove('hello')).toBe(true);
    expect(db.modules.remove('hello')).toBe(false);
    expect(db.modules.list().map((m) => m.name)).toEqual(['alpha']);
  });

  it("stores strangers' text (quotes, SQL, unicode, NUL-free control text) as data", () => {
    const db = open();
    const name = "x'); DROP TABLE results; --\u00e9\u{1F600}";
    db.modules.upsert({ name, version: '"1"', sourceSha256: 'a'.repeat(64), settings: { formats: [] } });
    const b = db.builds.create({ module: name, sourceSha256: 'a'.repeat(64), kernels: "'; --", formats: [], trigger: 'api' });
    db.results.record([result(b.id, '6.1.0-1-amd64', { module: name, firstError: 'error: \' " ; DELETE FROM builds' })]);
    expect(db.modules.get(name)?.version).toBe('"1"');
    expect(db.results.history(name)[0]?.firstError).toBe('error: \' " ; DELETE FROM builds');
    expect(db.builds.list({ module: name })).toHaveLength(1);
  });

  it('builds: b-<yyyymmddHHMMss>-<6 hex> ids, queued on creation, newest first, filtered, limited, updated, unfinished', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const db = open();
    const at = (t: string) => vi.setSystemTime(new Date(t));
    at('2026-12-08T00:00:01.000Z');
    const a = db.builds.create({ module: 'hello', sourceSha256: 'a'.repeat(64), kernels: 'new', formats: ['bmdeb'], trigger: 'watch' });
    at('2026-12-08T00:00:02.000Z');
    const b = db.builds.create({ sourceSha256: 'b'.repeat(64), kernels: 'all', formats: [], trigger: 'api' });
    at('2026-12-08T00:00:02.000Z');
    const c = db.builds.create({ module: 'hello', sourceSha256: 'c'.repeat(64), kernels: 'all', formats: [], trigger: 'api' });
    at('2026-12-09T10:11:12.000Z');
    const d = db.builds.create({ module: 'other', sourceSha256: 'd'.repeat(64), kernels: 'all', formats: [], trigger: 'api' });

    expect(a.id).toMatch(/^b-20261208000001-[0-9a-f]{6}$/);
    expect(d.id).toMatch(/^b-20261209101112-[0-9a-f]{6}$/);
    expect([d.id, a.id].sort()).toEqual([a.id, d.id]);
    expect(a).toEqual({
      id: a.id,
      module: 'hello',
      sourceSha256: 'a'.repeat(64),
      kernels: 'new',
      formats: ['bmdeb'],
      state: 'queued',
      trigger: 'watch',
      createdAt: '2026-12-08T00:00:01.000Z',
    });
    expect(b.module).toBeUndefined();
    expect(db.builds.get(b.id)).toEqual(b);
    expect(db.builds.get('b-20261208000001-000000')).toBeUndefined();

    expect(db.builds.list().map((r) => r.id)).toEqual([d.id, c.id, b.id, a.id]);
    expect(db.builds.list({ module: 'hello' }).map((r) => r.id)).toEqual([c.id, a.id]);
    expect(db.builds.list({ limit: 2 }).map((r) => r.id)).toEqual([d.id, c.id]);
    expect(db.builds.list({ module: 'hello', limit: 1 }).map((r) => r.id)).toEqual([c.id]);

    const running = db.builds.update(a.id, { state: 'running', startedAt: '2026-12-09T10:11:13.000Z' });
    expect(running).toEqual({ ...a, state: 'running', startedAt: '2026-12-09T10:11:13.000Z' });
    const done = db.builds.update(a.id, { state: 'done', finishedAt: '2026-12-09T10:12:00.000Z', exitCode: 1, summary: { built: 3, failed: 1, excluded: 0 } });
    expect(done).toEqual({ ...running, state: 'done', finishedAt: '2026-12-09T10:12:00.000Z', exitCode: 1, summary: { built: 3, failed: 1, excluded: 0 } });
    db.builds.update(b.id, { state: 'failed', error: 'the source is not a module', exitCode: 2 });
    db.builds.update(c.id, { state: 'running' });
    expect(db.builds.get(b.id)).toMatchObject({ state: 'failed', error: 'the source is not a module', exitCode: 2 });
    expect(db.builds.unfinished().map((r) => r.id)).toEqual([c.id, d.id]);
    expect(failure(() => db.builds.update('b-20261208000001-000000', { state: 'done' })).message).toMatch(/no build b-20261208000001-000000/);
    expect(() => db.builds.update(c.id, { state: 'bogus' as 'done' })).toThrow(/CHECK constraint/);
    expect(db.builds.get(c.id)?.state).toBe('running');
  });

  it('results: recording a cell twice keeps one row (the later); a batch is all or nothing; history is oldest first', () => {
    const db = open();
    const b1 = db.builds.create({ module: 'hello', sourceSha256: 'a'.repeat(64), kernels: 'all', formats: [], trigger: 'api' });
    const b2 = db.builds.create({ module: 'hello', sourceSha256: 'a'.repeat(64), kernels: 'all', formats: [], trigger: 'watch' });
    db.results.record([result(b2.id, '6.1.0-2-amd64', { at: '2026-12-08T02:00:00.000Z', verdict: 'failed', reason: 'compile', firstError: 'x.c:1: error' })]);
    db.results.record([
      result(b1.id, '6.1.0-1-amd64', { at: '2026-12-08T01:00:00.000Z', verdict: 'failed' }),
      result(b1.id, '6.1.0-2-amd64', { at: '2026-12-08T01:00:01.000Z', load: 'loaded' }),
    ]);
    // resumed: the same cell again
    db.results.record([result(b1.id, '6.1.0-1-amd64', { at: '2026-12-08T01:00:00.000Z', load: 'not-verified' })]);
    db.results.record([result(b1.id, '6.1.0-1-amd64', { at: '2026-12-08T01:00:00.000Z', load: 'not-verified' })]);

    expect(db.results.forBuild(b1.id)).toEqual([
      result(b1.id, '6.1.0-1-amd64', { at: '2026-12-08T01:00:00.000Z', load: 'not-verified' }),
      result(b1.id, '6.1.0-2-amd64', { at: '2026-12-08T01:00:01.000Z', load: 'loaded' }),
    ]);
    expect(db.results.history('hello').map((r) => [r.buildId, r.kernel, r.verdict])).toEqual([
      [b1.id, '6.1.0-1-amd64', 'built'],
      [b1.id, '6.1.0-2-amd64', 'built'],
      [b2.id, '6.1.0-2-amd64', 'failed'],
    ]);
    expect(db.results.history('other')).toEqual([]);

    // the second row breaks a constraint: the first is not kept either
    expect(() => db.results.record([result(b2.id, '6.12.0-1-amd64'), result(b2.id, '6.12.0-2-amd64', { verdict: 'maybe' as 'built' })])).toThrow(/CHECK constraint/);
    expect(db.results.forBuild(b2.id)).toHaveLength(1);
  });

  it('kernels: observe returns the new ones and the newly gone, a kernel back is no longer gone, an unlooked series is left alone', () => {
    const db = open();
    const first = db.kernels.observe([kernel('6.1.0-1-amd64'), kernel('6.1.0-2-amd64'), kernel('6.1.0-9-arm64', 'debian-12', 'arm64')], 't1');
    expect(first.added.map((k) => k.kernel)).toEqual(['6.1.0-1-amd64', '6.1.0-2-amd64', '6.1.0-9-arm64']);
    expect(first.added[0]).toEqual({ ...kernel('6.1.0-1-amd64'), firstSeen: 't1', lastSeen: 't1' });
    expect(first.gone).toEqual([]);

    // amd64 only this time: 6.1.0-1 left the archive, 6.1.0-3 is new; arm64 was not looked at
    const second = db.kernels.observe([kernel('6.1.0-2-amd64'), kernel('6.1.0-3-amd64')], 't2');
    expect(second.added.map((k) => k.kernel)).toEqual(['6.1.0-3-amd64']);
    expect(second.gone).toEqual([{ ...kernel('6.1.0-1-amd64'), firstSeen: 't1', lastSeen: 't1', goneSince: 't2' }]);
    expect(db.kernels.observe([kernel('6.1.0-2-amd64'), kernel('6.1.0-3-amd64')], 't3')).toEqual({ added: [], gone: [] });

    const back = db.kernels.observe([kernel('6.1.0-1-amd64'), kernel('6.1.0-2-amd64'), kernel('6.1.0-3-amd64')], 't4');
    expect(back).toEqual({ added: [], gone: [] });
    expect(db.kernels.list()).toEqual([
      { ...kernel('6.1.0-1-amd64'), firstSeen: 't1', lastSeen: 't4' },
      { ...kernel('6.1.0-2-amd64'), firstSeen: 't1', lastSeen: 't4' },
      { ...kernel('6.1.0-3-amd64'), firstSeen: 't2', lastSeen: 't4' },
      { ...kernel('6.1.0-9-arm64', 'debian-12', 'arm64'), firstSeen: 't1', lastSeen: 't1' },
    ]);
  });

  it('a file of the first schema is migrated at open: its rows kept, builds then hold their verify setting', () => {
    const file = freshFile();
    const db = openFarmDb(file);
    const b = db.builds.create({ module: 'hello', sourceSha256: 'a'.repeat(64), kernels: 'all', formats: [], trigger: 'api' });
    db.close();
    // back to what the first kfarm serve wrote: no verify column, no pruned_at column, user_version 1
    const raw = new Database(file);
    raw.exec('ALTER TABLE builds DROP COLUMN verify');
    raw.exec('ALTER TABLE kernels DROP COLUMN pruned_at');
    raw.pragma('user_version = 1');
    raw.close();
    const again = open(file);
    expect(again.builds.get(b.id)).toEqual(b);
    expect(again.builds.create({ sourceSha256: 'b'.repeat(64), kernels: 'all', formats: [], trigger: 'api', verify: 'load' }).verify).toBe('load');
    const check = new Database(file);
    expect(check.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    check.close();
  });

  it('a reopened file holds everything written', () => {
    const file = freshFile();
    const db = openFarmDb(file);
    const { token } = db.tokens.create('ci', ['read']);
    db.modules.upsert({ name: 'hello', version: '1', sourceSha256: 'a'.repeat(64), settings: { formats: ['kmm'] } });
    const b = db.builds.create({ module: 'hello', sourceSha256: 'a'.repeat(64), kernels: 'all', formats: [], trigger: 'api' });
    db.results.record([result(b.id, '6.1.0-1-amd64')]);
    db.kernels.observe([kernel('6.1.0-1-amd64')], 't1');
    const before = { tokens: db.tokens.list(), modules: db.modules.list(), builds: db.builds.list(), results: db.results.history('hello'), kernels: db.kernels.list() };
    db.close();

    const again = open(file);
    expect({
      tokens: again.tokens.list(),
      modules: again.modules.list(),
      builds: again.builds.list(),
      results: again.results.history('hello'),
      kernels: again.kernels.list(),
    }).toEqual(before);
    expect(again.tokens.verify(token)?.name).toBe('ci');
  });

  describe('a file it cannot use is refused, named, and left as it is', () => {
    const expectRefused = (file: string) => {
      const bytes = readFileSync(file);
      const err = failure(() => openFarmDb(file));
      expect(err.code).toBe('STATE_CORRUPT');
      expect(err.message).toContain(file);
      expect(err.message).toMatch(/damaged or not a kfarm database/);
      expect(err.hint).toMatch(/Restore it from a backup, or move it aside/);
      expect(err.hint).toContain(`mv ${file} ${file}.broken`);
      expect(readFileSync(file).equals(bytes)).toBe(true);
      return err;
    };

    it('garbage bytes', () => {
      const file = freshFile();
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, Buffer.from('this is not SQLite at all, just some bytes '.repeat(200)));
      expect(expectRefused(file).message).toMatch(/SQLITE_NOTADB/);
    });

    it('a real database truncated (to half, and to nothing) or with a page overwritten', () => {
      const source = freshFile();
      const db = openFarmDb(source);
      const b = db.builds.create({ module: 'hello', sourceSha256: 'a'.repeat(64), kernels: 'all', formats: [], trigger: 'api' });
      db.results.record(Array.from({ length: 800 }, (_, i) => result(b.id, `6.1.0-${i}-amd64`, { firstError: 'e'.repeat(200) })));
      db.close();
      const half = `${source}.half`;
      copyFileSync(source, half);
      truncateSync(half, Math.floor(statSync(source).size / 2));
      expect(expectRefused(half).message).toMatch(/SQLITE_CORRUPT/);
      // a page in the middle overwritten: the schema still reads, only the check finds it
      const page = `${source}.page`;
      const bytes = readFileSync(source);
      const middle = Math.floor(bytes.length / 4096 / 2) * 4096;
      bytes.fill(0x55, middle, middle + 4096);
      writeFileSync(page, bytes);
      expect(expectRefused(page).message).toMatch(/\(quick_check: .*btreeInitPage/);
      const empty = `${source}.empty`;
      writeFileSync(empty, '');
      expect(expectRefused(empty).message).toMatch(/an empty file/);
    });

    it("another program's SQLite database", () => {
      const file = freshFile();
      mkdirSync(path.dirname(file), { recursive: true });
      const other = new Database(file);
      other.exec('CREATE TABLE notes (text TEXT)');
      other.close();
      expect(expectRefused(file).message).toMatch(/another program/);
    });

    it('a file from a newer kfarm (user_version past the known migrations): upgrade kfarm', () => {
      const file = freshFile();
      openFarmDb(file).close();
      const raw = new Database(file);
      raw.pragma('user_version = 99');
      raw.close();
      const err = failure(() => openFarmDb(file));
      expect(err.code).toBe('STATE_TOO_NEW');
      expect(err.message).toContain(file);
      expect(err.message).toMatch(new RegExp(`schema version 99, newer than this kfarm knows \\(${MIGRATIONS.length}\\)`));
      expect(err.hint).toMatch(/Upgrade kfarm/);
      const after = new Database(file);
      expect(after.pragma('user_version', { simple: true })).toBe(99);
      after.close();
    });
  });

  describe('on a file system that is full or read-only', () => {
    const mnt = path.join(root, 'tmpfs');
    mkdirSync(mnt, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', mnt]);
    afterAll(() => execFileSync('umount', ['-l', mnt]));
    const file = path.join(mnt, 'service', 'farm.db');
    const filler = path.join(mnt, 'filler');
    /** Appends to the filler until the file system has no room left. */
    const fill = () => {
      const chunk = Buffer.alloc(1024, 1);
      for (;;)
        try {
          writeFileSync(filler, chunk, { flag: 'a' });
        } catch (err) {
          expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
          return;
        }
    };

    it('a write that does not fit is a FILE_SYSTEM error naming the file, rolled back; the data before is intact', () => {
      const db = openFarmDb(file);
      const b = db.builds.create({ module: 'hello', sourceSha256: 'a'.repeat(64), kernels: 'all', formats: [], trigger: 'api' });
      db.results.record([result(b.id, '6.1.0-1-amd64'), result(b.id, '6.1.0-2-amd64')]);
      const before = db.results.history('hello');
      fill();
      const big = Array.from({ length: 50 }, (_, i) => result(b.id, `6.12.0-${i}-amd64`, { firstError: 'x'.repeat(8000) }));
      const err = failure(() => db.results.record(big));
      expect(err.code).toBe('FILE_SYSTEM');
      expect(err.message).toContain(file);
      expect(err.message).toMatch(/no space left on the device .* while recording 50 result\(s\)/);
      expect(err.hint).toMatch(/df -h/);
      // the same connection still reads, without a row of the failed batch
      expect(db.results.history('hello')).toEqual(before);
      db.close();
      // closing removed the -wal, so fill again: opening needs room for its shared memory (-shm)
      fill();
      const full = failure(() => openFarmDb(file));
      expect(full.code).toBe('FILE_SYSTEM');
      expect(full.message).toContain(file);
      expect(full.message).toMatch(/no space left on the device/);

      rmSync(filler);
      const again = openFarmDb(file);
      expect(again.results.history('hello')).toEqual(before);
      again.results.record(big.slice(0, 2));
      expect(again.results.history('hello')).toHaveLength(4);
      again.close();
    });

    it('a read-only file system is a FILE_SYSTEM error naming the file', () => {
      execFileSync('mount', ['-o', 'remount,ro', mnt]);
      try {
        // SQLite itself would open it read-only and fail only at the first write
        const err = failure(() => openFarmDb(file));
        expect(err.code).toBe('FILE_SYSTEM');
        expect(err.message).toBe(`the farm's state ${file}: read-only file system while checking that ${path.dirname(file)} is writable (EROFS)`);
        expect(err.hint).toMatch(/make it writable by this user, or set KFARM_STATE_DIR/);
        const fresh = failure(() => openFarmDb(path.join(mnt, 'other', 'farm.db')));
        expect(fresh.code).toBe('FILE_SYSTEM');
      } finally {
        execFileSync('mount', ['-o', 'remount,rw', mnt]);
      }
    });
  });
});
