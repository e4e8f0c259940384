import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { KfarmError } from '../errors/kfarm-error.js';
import { spawnDaemon } from '../process/run.js';
import { settledWithin } from '../util/settled-within.js';
import { closeConnection, connectChecked, type RedisTarget } from './redis-connection.js';

/**
 * Without REDIS_URL, `kfarm build` runs its own redis-server on a unix socket in the state
 * directory (no TCP port, nothing to configure) and stops it when done. Its data file stays,
 * so finished jobs are cache hits for the next build.
 */
export interface PrivateRedis {
  target: RedisTarget;
  stop(): Promise<void>;
}

export async function startPrivateRedis(stateDir: string, logger: Logger): Promise<PrivateRedis> {
  const dir = path.join(stateDir, 'redis');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const socket = path.join(dir, 'redis.sock');
  const target: RedisTarget = { socket };

  // Another kfarm build on this state dir already runs one: share it, leave it running.
  const existing = await connectChecked(target, 500).catch(() => undefined);
  if (existing) {
    closeConnection(existing);
    logger.info({ socket }, 'using the private Redis another kfarm process started');
    return { target, stop: async () => undefined };
  }
  await rm(socket, { force: true });

  const daemon = spawnDaemon('redis-server', [
    '--port', '0',
    '--unixsocket', socket,
    '--unixsocketperm', '700',
    '--dir', dir,
    '--dbfilename', 'dump.rdb',
    '--save', '60 1',
    '--appendonly', 'no',
    '--daemonize', 'no',
    '--loglevel', 'warning',
    '--logfile', path.join(dir, 'redis.log'),
  ]);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const redis = await connectChecked(target, 500).catch(() => undefined);
    if (redis) {
      closeConnection(redis);
      break;
    }
    const exited = await settledWithin(daemon.exited, 100);
    if (exited || Date.now() > deadline) {
      await daemon.stop();
      throw new KfarmError('REDIS_START_FAILED', `could not start a private redis-server on ${socket}`, {
        hint: `Is redis-server installed (\`sudo bash scripts/setup.sh\` installs it)? Its log: ${path.join(dir, 'redis.log')}. Or set REDIS_URL to use a running Redis.`,
      });
    }
  }
  logger.info({ socket, pid: daemon.pid }, 'private Redis started');
  return {
    target,
    // SIGTERM makes redis-server save its data file and exit.
    stop: () => daemon.stop(),
  };
}
