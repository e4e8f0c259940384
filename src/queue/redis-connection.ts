import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { env as processEnv, type Env } from '../config/env.js';
import { KfarmError, describeError } from '../errors/kfarm-error.js';
import { rootLogger } from '../logging/logger.js';

/** Where Redis is: a URL (distributed mode) or the private server's unix socket. */
export type RedisTarget = { url: string } | { socket: string };

export function describeTarget(target: RedisTarget): string {
  return 'url' in target ? redactUrl(target.url) : `unix:${target.socket}`;
}

/**
 * BullMQ wants maxRetriesPerRequest: null on blocking connections; kfarm uses it everywhere.
 * A URL target gets its password and TLS files from the environment (urlOptions).
 */
export function connect(target: RedisTarget, extra: RedisOptions = {}, quiet = false): Redis {
  const options: RedisOptions = { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: true, ...extra };
  const redis = 'url' in target ? new Redis(target.url, { ...urlOptions(target.url), ...options }) : new Redis({ ...options, path: target.socket });
  // ioredis reconnects by itself and commands wait for it; still, say why it is reconnecting
  // (Redis gone, a wrong password, a TLS failure), once in a while, never with the URL.
  const log = rateLimited(rootLogger, 30_000);
  redis.on('error', quiet ? () => undefined : (err: unknown) => log(err, `Redis at ${describeTarget(target)}: ${describeError(err)} (reconnecting)`));
  return redis;
}

/**
 * What a URL cannot say: the password from a file (REDIS_PASSWORD_FILE; a password in the URL
 * wins) and, for rediss://, the CA to trust and a client certificate. Read once per process.
 */
export function urlOptions(url: string, source: Env = processEnv): RedisOptions {
  const cached = optionsCache.get(url);
  if (cached) return cached;
  const options: RedisOptions = {};
  if (source.redisPasswordFile) options.password = readSecret('REDIS_PASSWORD_FILE', source.redisPasswordFile).toString('utf8').trim();
  if (/^rediss:\/\//i.test(url)) {
    options.tls = {
      ...(source.redisCaFile ? { ca: readSecret('KFARM_REDIS_CA_FILE', source.redisCaFile) } : {}),
      ...(source.redisCertFile ? { cert: readSecret('KFARM_REDIS_CERT_FILE', source.redisCertFile) } : {}),
      ...(source.redisKeyFile ? { key: readSecret('KFARM_REDIS_KEY_FILE', source.redisKeyFile) } : {}),
    };
  }
  optionsCache.set(url, options);
  return options;
}
const optionsCache = new Map<string, RedisOptions>();

function readSecret(variable: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new KfarmError('BAD_OPTION', `${variable}=${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? describeError(err)})`, {
      cause: err,
      hint: `Point ${variable} at a file this user can read.`,
    });
  }
}

/** Logs the first of a noisy run of errors, then at most one per interval with how many were skipped. */
export function rateLimited(logger: Logger, intervalMs: number): (err: unknown, message: string) => void {
  let last = 0;
  let skipped = 0;
  return (err, message) => {
    const now = Date.now();
    if (now - last < intervalMs) {
      skipped++;
      return;
    }
    logger.warn({ err: describeError(err), ...(skipped ? { skipped } : {}) }, message);
    last = now;
    skipped = 0;
  };
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
  const redis = connect(target, { retryStrategy: () => null, connectTimeout: timeoutMs }, true); // reported through the ping below
  // The ready check's own error (NOAUTH, a TLS failure) arrives as an event; the command that
  // fails after it only says "Connection is closed".
  let cause: unknown;
  redis.on('error', (err: unknown) => (cause ??= err));
  try {
    await redis.connect();
    await redis.ping();
    return redis;
  } catch (err) {
    closeConnection(redis); // a failed probe (no server yet) must not hold the process 2 s
    cause ??= err;
    throw new KfarmError('REDIS_UNREACHABLE', `cannot reach Redis at ${describeTarget(target)}: ${describeError(cause)}`, {
      cause,
      hint:
        'url' in target
          ? /NOAUTH|WRONGPASS|AUTH/.test(describeError(cause))
            ? 'Redis wants a password: put it in a file (chmod 600) and set REDIS_PASSWORD_FILE to it (compose.yaml keeps it in .kfarm-farm/redis.password).'
            : "Check REDIS_URL and that the server is running (compose.yaml, or `redis-server` with a password), or unset REDIS_URL to let kfarm start a private Redis. For rediss:// set KFARM_REDIS_CA_FILE to the CA that signed the server's certificate."
          : 'Is redis-server installed? `bash scripts/setup.sh` installs it.',
    });
  }
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
