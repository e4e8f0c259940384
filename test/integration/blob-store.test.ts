import { createHash } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { BlobStore, RELEASE_GRACE_SECONDS } from '../../src/queue/blob-store.js';
import { startPrivateRedis, type PrivateRedis } from '../../src/queue/private-redis.js';
import { closeConnection, connectChecked } from '../../src/queue/redis-connection.js';
import { tempDir } from '../helpers/kfarm-cli.js';
import type { Redis } from 'ioredis';

/** The content-addressed blobs, against a real redis-server. */
let server: PrivateRedis;
let redis: Redis;
let blobs: BlobStore;

beforeAll(async () => {
  server = await startPrivateRedis(await tempDir('blobs'), pino({ level: 'silent' }));
  redis = await connectChecked(server.target);
  blobs = new BlobStore(redis, 'test');
});

afterAll(async () => {
  closeConnection(redis);
  await server.stop();
});

describe('BlobStore', () => {
  it('names a blob by its sha256 and gives back the same bytes', async () => {
    const data = Buffer.from('a module\n');
    const ref = await blobs.put(data);
    expect(ref).toEqual({ sha256: createHash('sha256').update(data).digest('hex'), size: data.length });
    expect(await blobs.get(ref.sha256)).toEqual(data);
    expect([...(await blobs.getAll([ref, ref])).keys()]).toEqual([ref.sha256]);
  });

  it('expires blobs (a day by default: Redis is not the cache), and touch pushes the expiry out without sending them again', async () => {
    const week = await blobs.put(Buffer.from('result'));
    expect(await redis.ttl(`test:blob:${week.sha256}`)).toBeGreaterThan(23 * 3600);
    expect(await redis.ttl(`test:blob:${week.sha256}`)).toBeLessThanOrEqual(24 * 3600);
    const day = await blobs.put(Buffer.from('source'), 3600);
    expect(await redis.ttl(`test:blob:${day.sha256}`)).toBeLessThanOrEqual(3600);
    expect(await blobs.touch(day.sha256, 7200)).toBe(true);
    expect(await redis.ttl(`test:blob:${day.sha256}`)).toBeGreaterThan(3600);
    expect(await blobs.touch('0'.repeat(64))).toBe(false);
  });

  it('release: blobs a coordinator has in hand expire within seconds (the result store on disk keeps them)', async () => {
    const a = await blobs.put(Buffer.from('a module'));
    const b = await blobs.put(Buffer.from('its log'));
    await blobs.release([a, b]);
    for (const ref of [a, b]) {
      const ttl = await redis.ttl(`test:blob:${ref.sha256}`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(RELEASE_GRACE_SECONDS);
    }
    await blobs.release([a], 1);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await blobs.has(a.sha256)).toBe(false);
  });

  it('says which blob is missing, and refuses one whose bytes do not match its name', async () => {
    const missing = await blobs.get('f'.repeat(64)).catch((err: unknown) => err);
    expect(isKfarmError(missing, 'BLOB_MISSING')).toBe(true);
    const ref = await blobs.put(Buffer.from('honest'));
    await redis.set(`test:blob:${ref.sha256}`, 'tampered');
    const corrupt = await blobs.get(ref.sha256).catch((err: unknown) => err);
    expect(isKfarmError(corrupt, 'JOB_FAILED')).toBe(true);
    expect((corrupt as Error).message).toContain('corrupt');
  });
});
