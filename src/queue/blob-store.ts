import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { KfarmError } from '../errors/kfarm-error.js';
import type { Artifact } from './job-payload.js';

/** The key prefix of every farm's blobs (one namespace: blobs are content-addressed). */
export const BLOB_PREFIX = 'kfarm';

/**
 * Content-addressed blobs in Redis: the module source going out to workers and the modules
 * and logs coming back. Workers on other hosts need no shared file system. Blobs expire so
 * that a busy farm's Redis does not grow without end: results after a week (they are the
 * cache), a source after a day unless a waiting coordinator keeps it alive (see touch).
 */
export class BlobStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlSeconds = 7 * 24 * 3600,
  ) {}

  async put(data: Buffer, ttlSeconds = this.ttlSeconds): Promise<Artifact> {
    const sha256 = createHash('sha256').update(data).digest('hex');
    const key = this.key(sha256);
    // Re-putting refreshes the expiry: a blob a new build refers to stays alive.
    await this.redis.set(key, data, 'EX', ttlSeconds);
    return { sha256, size: data.length };
  }

  /** Pushes a blob's expiry out without sending it again; false when it is gone. */
  async touch(sha256: string, ttlSeconds = this.ttlSeconds): Promise<boolean> {
    return (await this.redis.expire(this.key(sha256), ttlSeconds)) === 1;
  }

  async get(sha256: string): Promise<Buffer> {
    const data = await this.redis.getBuffer(this.key(sha256));
    if (!data) {
      throw new KfarmError('BLOB_MISSING', `blob ${sha256.slice(0, 12)} is not in Redis (expired, evicted, or lost in a restart)`, {
        hint: 'Run the build again; kfarm re-uploads what it needs.',
      });
    }
    const actual = createHash('sha256').update(data).digest('hex');
    if (actual !== sha256) throw new KfarmError('JOB_FAILED', `blob ${sha256.slice(0, 12)} is corrupt (sha256 ${actual.slice(0, 12)})`);
    return data;
  }

  /** Every blob a result refers to, by sha256: fetched at once, so Redis can go away after. */
  async getAll(refs: readonly Artifact[]): Promise<Map<string, Buffer>> {
    const entries = await Promise.all(refs.map(async (ref) => [ref.sha256, await this.get(ref.sha256)] as const));
    return new Map(entries);
  }

  async has(sha256: string): Promise<boolean> {
    return (await this.redis.exists(this.key(sha256))) === 1;
  }

  private key(sha256: string): string {
    return `${this.prefix}:blob:${sha256}`;
  }
}
