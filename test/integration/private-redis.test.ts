import { access, mkdir, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import path from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
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

const reachable = (target: RedisTarget) => connectChecked(target, 500).then((r) => (closeConnection(r), true), () => false);
const exists = (file: string) => access(file).then(() => true, () => false);

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
    const child = execa('true');
    await child;
    const gone = { pid: child.pid };
    await mkdir(path.join(state, 'redis'), { recursive: true });
    await writeFile(path.join(state, 'redis', 'start.lock'), String(gone.pid));
    const session = await startPrivateRedis(state, logger);
    expect(await reachable(session.target)).toBe(true);
    await session.stop();
    expect(await exists(path.join(state, 'redis', 'start.lock'))).toBe(false);
  });
});
