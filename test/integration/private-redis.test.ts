import { access, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import path from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { tryLockFile } from '../../src/process/file-lock.js';
import { isAlive } from '../../src/process/pid.js';
import { startPrivateRedis, type PrivateRedis } from '../../src/queue/private-redis.js';
import { closeConnection, connectChecked, type RedisTarget } from '../../src/queue/redis-connection.js';
import { tempDir } from '../helpers/kfarm-cli.js';

/**
 * Several `kfarm build`s on one state directory share one private redis-server (a real one):
 * it stays up while any of them still uses it and the last one out stops it.
 */
const logger = pino({ level: 'silent' });

async function serverPid(target: RedisTarget): Promise<number> {
  const redis = await connectChecked(target, 2000);
  try {
    return Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);
  } finally {
    closeConnection(redis);
  }
}

const reachable = (target: RedisTarget) =>
  connectChecked(target, 500).then(
    (r) => (closeConnection(r), true),
    () => false,
  );
const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

describe('the private Redis shared by concurrent builds', () => {
  it('stays up while a second build uses it, and stops (saving its data) when the last one leaves', async () => {
    const state = await tempDir('share');
    const a = await startPrivateRedis(state, logger);
    const pid = await serverPid(a.target);
    const b = await startPrivateRedis(state, logger);
    expect(await serverPid(b.target)).toBe(pid);

    await a.stop();
    expect(await reachable(b.target), 'the first build out must not stop a server the second still uses').toBe(true);

    await b.stop();
    expect(isAlive(pid)).toBe(false);
    expect(await exists(path.join(state, 'redis', 'redis.sock'))).toBe(false);
    expect(await exists(path.join(state, 'redis', 'dump.rdb'))).toBe(true);
  });

  it('builds starting at the same moment start one server, not several', async () => {
    const state = await tempDir('race');
    const sessions = await Promise.all([1, 2, 3, 4].map(() => startPrivateRedis(state, logger)));
    const pids = await Promise.all(sessions.map((s) => serverPid(s.target)));
    expect(new Set(pids).size).toBe(1);
    for (const s of sessions) await s.stop();
    expect(isAlive(pids[0] ?? 0)).toBe(false);
  });

  it('a build joining while the last one leaves gets a working server', async () => {
    const state = await tempDir('handover');
    for (let round = 0; round < 5; round++) {
      const leaving = await startPrivateRedis(state, logger);
      const [, joined] = await Promise.all([leaving.stop(), startPrivateRedis(state, logger)]);
      expect(await reachable(joined.target)).toBe(true);
      const pid = await serverPid(joined.target);
      await joined.stop();
      expect(isAlive(pid)).toBe(false);
    }
  });

  it('the lease of a build that died (never left) expires; the next build out stops the server', async () => {
    const state = await tempDir('dead');
    const first = await startPrivateRedis(state, logger);
    const pid = await serverPid(first.target);
    // A build killed with SIGKILL: its lease is there, expired, and nobody will remove it.
    const redis = await connectChecked(first.target);
    await redis.zadd('kfarm:private-redis:leases', Date.now() - 1, 'dead-host:1:gone');
    closeConnection(redis);

    const next: PrivateRedis = await startPrivateRedis(state, logger);
    await first.stop();
    expect(await reachable(next.target)).toBe(true);
    await next.stop();
    expect(isAlive(pid)).toBe(false);
  });

  it('a build killed with SIGKILL within its lease: the next build out stops the server at once, not when the lease expires', async () => {
    const state = await tempDir('killed');
    // A real build process of this host that joins, then dies without leaving.
    const script = `
      const { startPrivateRedis } = await import(${JSON.stringify(path.resolve('lib/src/queue/private-redis.js'))});
      const { pino } = await import('pino');
      await startPrivateRedis(process.argv[1], pino({ level: 'silent' }));
      console.log('joined');
      setInterval(() => {}, 1000);`;
    const child = execa('node', ['--input-type=module', '-e', script, state], { cwd: process.cwd(), reject: false });
    await new Promise<void>((resolve) => child.stdout?.on('data', (d: Buffer) => d.toString().includes('joined') && resolve()));
    const next = await startPrivateRedis(state, logger);
    const pid = await serverPid(next.target);
    child.kill('SIGKILL');
    await child;
    // Its lease has about 30 s to run; the dead holder is on this host, so it does not count.
    await next.stop();
    expect(isAlive(pid), 'the server must stop with the last live build').toBe(false);
    expect(await exists(path.join(state, 'redis', 'redis.sock'))).toBe(false);
  });

  it('a server that dies under a build is started again from its data file', async () => {
    const state = await tempDir('revive');
    const session = await startPrivateRedis(state, logger, { renewMs: 300 });
    const redis = await connectChecked(session.target);
    await redis.set('kept', 'yes');
    await redis.save();
    const pid = await serverPid(session.target);
    closeConnection(redis);
    process.kill(pid, 'SIGKILL');

    let revived: number | undefined;
    for (let i = 0; i < 100 && !revived; i++) {
      await new Promise((r) => setTimeout(r, 100));
      revived = await serverPid(session.target).catch(() => undefined);
    }
    expect(revived).toBeGreaterThan(0);
    expect(revived).not.toBe(pid);
    const again = await connectChecked(session.target);
    expect(await again.get('kept')).toBe('yes');
    closeConnection(again);
    await session.stop();
    expect(isAlive(revived ?? 0)).toBe(false);
  });

  it('a start lock left by a starter that died does not block the next build', async () => {
    const state = await tempDir('stale-lock');
    const lockFile = path.join(state, 'redis', 'start.lock');
    // A starter killed while it held the lock (SIGKILL: nothing of it runs to clean up).
    const { holder } = await holdStartLock(lockFile);
    holder.kill('SIGKILL');
    await holder.catch(() => undefined);
    const session = await startPrivateRedis(state, logger);
    expect(await reachable(session.target)).toBe(true);
    await session.stop();
    expect(await lockedByNobody(lockFile), 'the start lock is released once the server is up').toBe(true);
  });

  it('starters waiting on a holder that dies, and one on a lock file naming a dead pid, start exactly one server', async () => {
    const state = await tempDir('lock-race');
    const lockFile = path.join(state, 'redis', 'start.lock');
    const { holder } = await holdStartLock(lockFile);
    const waiting = [1, 2, 3, 4].map(() => startPrivateRedis(state, logger));
    await new Promise((r) => setTimeout(r, 700)); // they all find no server and the lock taken
    expect(await redisServersOn(path.join(state, 'redis', 'redis.sock'))).toEqual([]);
    holder.kill('SIGKILL'); // the holder dies mid-start: all four now see a dead holder at once
    await holder.catch(() => undefined);
    // and a fifth that arrives when the file names a pid that no longer runs (the old lock's stale test)
    const gone = execa('true');
    await gone;
    await writeFile(lockFile, String(gone.pid));
    const sessions = await Promise.all([...waiting, startPrivateRedis(state, logger)]);

    const servers = await redisServersOn(path.join(state, 'redis', 'redis.sock'));
    expect(servers, 'exactly one redis-server may run on the socket').toHaveLength(1);
    const pids = await Promise.all(sessions.map((s) => serverPid(s.target)));
    expect(new Set(pids)).toEqual(new Set(servers));
    for (const s of sessions) await s.stop();
    expect(isAlive(servers[0] ?? 0)).toBe(false);
  });
});

/**
 * Another process holding the start lock the way a starter does (the same kernel lock), until
 * it is killed. Resolves once it holds it (wrapped: the child itself is a promise of its end).
 */
async function holdStartLock(lockFile: string) {
  await mkdir(path.dirname(lockFile), { recursive: true });
  const script = `
    const fs = require('node:fs');
    const fd = fs.openSync(process.argv[1], 'a+');
    if (!require('fs-native-extensions').tryLock(fd)) process.exit(3);
    fs.writeSync(fd, String(process.pid));
    console.log('locked');
    setInterval(() => {}, 1000);`;
  const child = execa('node', ['-e', script, lockFile], { cwd: process.cwd() });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once('data', () => resolve());
    child.catch(reject);
  });
  return { holder: child };
}

/** True when a fresh open of the file gets the lock (then gives it back). */
async function lockedByNobody(lockFile: string): Promise<boolean> {
  const lock = await tryLockFile(lockFile, 'test');
  await lock?.release();
  return lock !== undefined;
}

/** pids of the redis-server processes started for this socket, read from /proc. */
async function redisServersOn(socket: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    // redis-server retitles itself "redis-server unixsocket:<path>"
    if (cmdline.startsWith('redis-server') && cmdline.includes(`unixsocket:${socket}\0`) && isAlive(Number(entry))) pids.push(Number(entry));
  }
  return pids;
}
