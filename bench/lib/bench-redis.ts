import { existsSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import type { Redis } from 'ioredis';

/** A throwaway redis-server on a unix socket in `dir`, without persistence: a benchmark's own. */
export async function startBenchRedis(dir: string): Promise<{ socket: string; stop(): Promise<void> }> {
  const socket = path.join(dir, 'redis.sock');
  const redis = execa('redis-server', ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--save', '', '--appendonly', 'no', '--dir', dir], { reject: false });
  for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
  return {
    socket,
    stop: async () => {
      redis.kill('SIGTERM');
      await redis;
    },
  };
}

/** INFO memory's used_memory, in bytes. */
export async function usedMemory(redis: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? Number.NaN);
}
