import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { KfarmError } from '../errors/kfarm-error.js';
import type { Artifact } from '../job/job-payload.js';

/** The key prefix of every farm's blobs (one namespace: blobs are content-addressed). */
export const BLOB_PREFIX = 'kfarm';

/** How long a result's blobs stay in Redis once a coordinator fetched them. */
export const RELEASE_GRACE_SECONDS = 10;

/**
 * Content-addressed blobs in Redis: the module source going out to workers and the modules
 * and logs coming back. Workers on other hosts need no shared file system. Redis is not the
 * cache (the coordinator's result store on disk is, src/store/): blobs are in flight only, and
 * expire so that Redis memory stays flat however many builds pass through it. A result's blobs
 * live a day at most if no coordinator fetches them, and RELEASE_GRACE_SECONDS once one has
 * (see release); a source a day unless a waiting coordinator keeps it alive (see touch).
 */
export class BlobStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlSeconds = 24 * 3600,
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

  /**
   * The coordinator has these blobs in hand: they expire soon (another coordinator waiting on
   * the same job fetches them at the same moment; one later than that builds again).
   */
  async release(refs: readonly Artifact[], graceSeconds = RELEASE_GRACE_SECONDS): Promise<void> {
    if (refs.length === 0) return;
    const multi = this.redis.multi();
    for (const ref of refs) multi.expire(this.key(ref.sha256), graceSeconds);
    await multi.exec();
  }

  async has(sha256: string): Promise<boolean> {
    return (await this.redis.exists(this.key(sha256))) === 1;
  }

  private key(sha256: string): string {
    return `${this.prefix}:blob:${sha256}`;
  }
}
