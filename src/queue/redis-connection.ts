import { Redis, type RedisOptions } from 'ioredis';
import { KfarmError, describeError } from '../errors/kfarm-error.js';

/** Where Redis is: a URL (distributed mode) or the private server's unix socket. */
export type RedisTarget = { url: string } | { socket: string };

export function describeTarget(target: RedisTarget): string {
  return 'url' in target ? redactUrl(target.url) : `unix:${target.socket}`;
}

/** BullMQ wants maxRetriesPerRequest: null on blocking connections; kfarm uses it everywhere. */
export function connect(target: RedisTarget, extra: RedisOptions = {}): Redis {
  const options: RedisOptions = { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: true, ...extra };
  const redis = 'url' in target ? new Redis(target.url, options) : new Redis({ ...options, path: target.socket });
  // ioredis reconnects by itself; errors surface through the commands that fail.
  redis.on('error', () => undefined);
  return redis;
}

/**
 * Closes a connection without leaving a timer behind: ioredis arms a 2 s "destroy the socket"
 * timer on disconnect() that only a later 'close' event clears, so calling it on a connection
 * that is already closed (BullMQ closed it, or Redis went away) keeps the process alive 2 s.
 */
export function closeConnection(redis: Redis): void {
  if (redis.status === 'end') return;
  redis.disconnect();
}

/** Connects and pings, with an error that says what to do when Redis is not there. */
export async function connectChecked(target: RedisTarget, timeoutMs = 5000): Promise<Redis> {
  const redis = connect(target, { retryStrategy: () => null, connectTimeout: timeoutMs });
  redis.on('error', () => undefined); // reported through the ping below
  try {
    await redis.connect();
    await redis.ping();
    return redis;
  } catch (err) {
    closeConnection(redis); // a failed probe (no server yet) must not hold the process 2 s
    throw new KfarmError('REDIS_UNREACHABLE', `cannot reach Redis at ${describeTarget(target)}: ${describeError(err)}`, {
      cause: err,
      hint: 'url' in target
        ? 'Check REDIS_URL and that the server is running (`redis-server --port 6379 --protected-mode no`), or unset REDIS_URL to let kfarm start a private Redis.'
        : 'Is redis-server installed? `bash scripts/setup.sh` installs it.',
    });
  }
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
