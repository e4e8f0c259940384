import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { KfarmError, describeError } from '../errors/kfarm-error.js';
import { lockNote, tryLockFile } from '../process/file-lock.js';
import { isAlive } from '../process/pid.js';
import { spawnDaemon } from '../process/run.js';
import { settledWithin } from '../util/settled-within.js';
import { holderIsGone, holderName } from './job-holder.js';
import { closeConnection, connectChecked, type RedisTarget } from './redis-connection.js';
import { makeDirs } from '../util/make-dir.js';

/**
 * Without REDIS_URL, `kfarm build` runs a private redis-server on a unix socket in the state
 * directory (no TCP port, nothing to configure). Its data file stays, so finished jobs are
 * cache hits for the next build.
 *
 * Several builds may run at once on one state directory and share that server. Each holds a
 * lease (a member of a sorted set scored by its expiry, renewed while it runs); the last one
 * to leave shuts the server down. Leaving and joining are Lua scripts, so they are atomic:
 * a build that joins while the last one leaves either keeps the server alive or sees it
 * closing and starts a new one. A build killed with SIGKILL leaves a lease that expires, and
 * a server nobody stops; the next build joins it and stops it when done: a lease names its
 * holder (`<host>/<pid>:<start>#<uuid>`), so the leaver drops those of processes of this host
 * that are gone instead of leaving the server running until they expire.
 */
export interface PrivateRedis {
  target: RedisTarget;
  /** Gives up this build's lease; the last build out stops the server (saving its data). */
  stop(): Promise<void>;
}

const LEASES = 'kfarm:private-redis:leases';
const CLOSING = 'kfarm:private-redis:closing';
const LEASE_TTL_MS = 30_000;
const RENEW_MS = 10_000;
const JOIN_DEADLINE_MS = 30_000;
const START_LOCK = 'start.lock';

/** Joins unless the server is closing. KEYS: leases, closing. ARGV: lease id, expiry (ms). */
const JOIN = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1`;

/** The process that started the server: a `closing` left in the data file is stale. */
const FOUND = `
redis.call('DEL', KEYS[2])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1`;

/** Leaves; returns 1 when no live lease is left, after marking the server closing. ARGV: lease id, now (ms). */
const LEAVE = `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) > 0 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1')
return 1`;

export interface PrivateRedisOptions {
  /** How often the lease is renewed and the server checked (restarted when it died). */
  renewMs?: number;
}

export async function startPrivateRedis(stateDir: string, logger: Logger, options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const dir = path.join(stateDir, 'redis');
  await makeDirs(dir, { mode: 0o700 });
  const socket = path.join(dir, 'redis.sock');
  const target: RedisTarget = { socket };
  const leaseId = `${holderName(os.hostname())}#${randomUUID()}`;
  const expiry = () => String(Date.now() + LEASE_TTL_MS);

  /** Joins the running server, or starts one; waits out one that is shutting down. */
  const join = async (): Promise<{ redis: Redis; pid: number | undefined }> => {
    const deadline = Date.now() + JOIN_DEADLINE_MS;
    for (;;) {
      const existing = await connectChecked(target, 500).catch(() => undefined);
      if (existing) {
        if ((await existing.eval(JOIN, 2, LEASES, CLOSING, leaseId, expiry()).catch(() => 0)) === 1) {
          logger.info({ socket }, 'sharing the private Redis another kfarm build started');
          return { redis: existing, pid: await serverProcessId(existing) };
        }
        closeConnection(existing); // it is shutting down: wait for it to go, then start a new one
      } else {
        const started = await startUnderLock(dir, socket, target, logger, async (fresh) => {
          await fresh.eval(FOUND, 2, LEASES, CLOSING, leaseId, expiry());
        });
        if (started) return { redis: started, pid: await serverProcessId(started) };
      }
      if (Date.now() > deadline) {
        const holder = await lockNote(path.join(dir, START_LOCK));
        throw new KfarmError('REDIS_START_FAILED', `could not start or join the private redis-server on ${socket}`, {
          context: { socket, lastStarter: holder || undefined },
          hint: `Another kfarm process (pid ${holder || 'unknown'} took the start lock last) may be stuck starting or stopping it. Its log: ${path.join(dir, 'redis.log')}. Or set REDIS_URL to use a running Redis.`,
        });
      }
      await sleep(200);
    }
  };

  let server = await join();
  // Each tick renews the lease (re-adding it if it was pruned while this process was paused).
  // A server that died (killed, OOM) is started again from its data file; BullMQ reconnects
  // and the coordinator re-submits the jobs the restart lost.
  let ticking: Promise<void> | undefined;
  const tick = async () => {
    const joined = await server.redis.eval(JOIN, 2, LEASES, CLOSING, leaseId, expiry()).catch(() => 0);
    if (joined === 1) return;
    logger.warn({ socket }, 'the private Redis went away; starting it again');
    closeConnection(server.redis);
    server = await join();
  };
  const renew = setInterval(() => {
    ticking ??= tick()
      .catch((err) => logger.error({ err: describeError(err) }, 'could not restart the private Redis'))
      .finally(() => (ticking = undefined));
  }, options.renewMs ?? RENEW_MS);
  renew.unref();

  return {
    target,
    stop: async () => {
      clearInterval(renew);
      await ticking;
      const { redis, pid } = server;
      await dropGoneLeases(redis);
      const last = await redis.eval(LEAVE, 2, LEASES, CLOSING, leaseId, String(Date.now())).catch(() => 0);
      if (last !== 1) {
        closeConnection(redis);
        logger.info({ socket }, 'left the private Redis running for the other kfarm builds using it');
        return;
      }
      // SHUTDOWN SAVE writes the data file, removes the socket and exits; the reply never comes.
      await settledWithin(redis.call('SHUTDOWN', 'SAVE'), 10_000);
      closeConnection(redis);
      await waitForExit(pid, 15_000);
      logger.info({ socket, pid }, 'private Redis stopped');
    },
  };
}

/**
 * Starts the server unless another process is starting it right now: a kernel lock on
 * `start.lock` (see process/file-lock.ts), which a starter that dies releases by dying, so no
 * "dead holder" is ever judged and taken over. Returns the connection, after `found` ran on it,
 * or undefined when the caller should retry joining.
 */
async function startUnderLock(dir: string, socket: string, target: RedisTarget, logger: Logger, found: (redis: Redis) => Promise<void>): Promise<Redis | undefined> {
  const lock = await tryLockFile(path.join(dir, START_LOCK), String(process.pid));
  if (!lock) return undefined;
  try {
    // Started by someone else between our probe and the lock: join it instead.
    const running = await connectChecked(target, 500).catch(() => undefined);
    if (running) {
      closeConnection(running);
      return undefined;
    }
    await rm(socket, { force: true });
    const daemon = spawnDaemon('redis-server', [
      '--port',
      '0',
      '--unixsocket',
      socket,
      '--unixsocketperm',
      '700',
      '--dir',
      dir,
      '--dbfilename',
      'dump.rdb',
      '--save',
      '60 1',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--loglevel',
      'warning',
      '--logfile',
      path.join(dir, 'redis.log'),
    ]);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const redis = await connectChecked(target, 500).catch(() => undefined);
      if (redis) {
        await found(redis);
        logger.info({ socket, pid: daemon.pid }, 'private Redis started');
        return redis;
      }
      // polled often: every build call waits for this (a server is up in about 10-20 ms)
      const exited = await settledWithin(daemon.exited, 10);
      if (exited || Date.now() > deadline) {
        await daemon.stop();
        throw new KfarmError('REDIS_START_FAILED', `could not start a private redis-server on ${socket}`, {
          hint: `Is redis-server installed (\`bash scripts/setup.sh\` installs it)? Its log: ${path.join(dir, 'redis.log')}. Or set REDIS_URL to use a running Redis.`,
        });
      }
    }
  } finally {
    await lock.release();
  }
}

async function serverProcessId(redis: Redis): Promise<number | undefined> {
  const info = await redis.info('server').catch((err) => {
    throw new KfarmError('REDIS_UNREACHABLE', `the private Redis went away: ${describeError(err)}`, { cause: err });
  });
  const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
  return pid || undefined;
}

/** The server may have been started by another process, so its exit is watched by pid. */
async function waitForExit(pid: number | undefined, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (pid && isAlive(pid) && Date.now() < deadline) await sleep(10);
}

/** Removes the leases of processes of this host that are gone (a build killed with SIGKILL). */
async function dropGoneLeases(redis: Redis): Promise<void> {
  const leases = await redis.zrange(LEASES, 0, -1).catch(() => [] as string[]);
  const gone = leases.filter((lease) => holderIsGone(lease.split('#')[0], os.hostname()));
  if (gone.length > 0) await redis.zrem(LEASES, ...gone).catch(() => 0);
}
