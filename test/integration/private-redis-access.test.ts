import { stat } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { startPrivateRedis } from '../../src/queue/private-redis.js';
import { closeConnection, connectChecked } from '../../src/queue/redis-connection.js';
import { tempDir } from '../helpers/kfarm-cli.js';

/**
 * The private Redis of a `kfarm build` without REDIS_URL holds no password: what keeps other
 * users and the network out is that it listens on no TCP port, only on a unix socket that
 * only its owner may open, in a directory only its owner may enter (a real redis-server).
 */
describe('the private Redis is reachable by its owner only', () => {
  it('listens on no TCP port, on a 0700 unix socket in a 0700 directory', async () => {
    const state = await tempDir('private-redis-access');
    const server = await startPrivateRedis(state, pino({ level: 'silent' }));
    try {
      const socket = 'socket' in server.target ? server.target.socket : '';
      expect(path.dirname(socket)).toBe(path.join(state, 'redis'));
      expect((await stat(path.dirname(socket))).mode & 0o777).toBe(0o700);
      expect((await stat(socket)).isSocket()).toBe(true);
      expect((await stat(socket)).mode & 0o777).toBe(0o700);
      const redis = await connectChecked(server.target, 2000);
      try {
        expect(await redis.config('GET', 'port')).toEqual(['port', '0']);
        expect(await redis.config('GET', 'unixsocketperm')).toEqual(['unixsocketperm', '700']);
      } finally {
        closeConnection(redis);
      }
    } finally {
      await server.stop();
    }
  });
});
