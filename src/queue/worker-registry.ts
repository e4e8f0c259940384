import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';

/**
 * Workers say in Redis which build images (and so which kernels) they hold, so a coordinator
 * with REDIS_URL can plan a build without a Docker engine of its own. Each advert expires
 * unless its worker renews it: a worker that died drops out within ADVERT_TTL_SECONDS.
 */
export const ADVERT_TTL_SECONDS = 60;
const RENEW_MS = 20_000;

const advertSchema = z.object({
  worker: z.string(),
  hostname: z.string(),
  pid: z.number(),
  concurrency: z.number(),
  images: z.array(z.object({ name: z.string(), ref: z.string(), id: z.string(), arch: z.string(), kernels: z.array(z.string()) })),
  /** the boot lanes it takes (kfarm worker --verify); absent: none */
  verify: z.array(z.enum(['kvm', 'tcg'])).optional(),
  /** builds it runs now; absent: a worker of an older kfarm, which did not say */
  running: z.number().int().nonnegative().optional(),
  seenAt: z.string(),
});

export type WorkerAdvert = z.infer<typeof advertSchema>;

const keyPrefix = (queue: string) => `kfarm:${queue}:worker:`;

export interface Advertiser {
  /** publishes again soon (what it runs changed): coalesced, at most one publish in flight */
  refresh(): void;
  stop(): Promise<void>;
}

/** Publishes `describe()` now, every RENEW_MS and on refresh() until stopped; stop() withdraws it. */
export async function startAdvertising(redis: Redis, queue: string, describe: () => Promise<Omit<WorkerAdvert, 'seenAt'>>, logger: Logger): Promise<Advertiser> {
  let key: string | undefined;
  const publish = async () => {
    const advert: WorkerAdvert = { ...(await describe()), seenAt: new Date().toISOString() };
    key = `${keyPrefix(queue)}${advert.worker}`;
    await redis.set(key, JSON.stringify(advert), 'EX', ADVERT_TTL_SECONDS);
  };
  await publish();
  const renew = () => {
    // Redis or Docker may be restarting: the next round tries again, the TTL covers the gap.
    publish().catch((err: unknown) => logger.warn({ err }, 'could not renew the worker advert'));
  };
  const timer = setInterval(renew, RENEW_MS);
  // A Redis that restarted without its data has forgotten the advert: say it again at once.
  redis.on('ready', renew);
  // a job starting or ending: one publish at a time, one more after it if anything changed meanwhile
  let publishing: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  const refresh = () => {
    if (stopped) return;
    if (publishing) {
      again = true;
      return;
    }
    publishing = publish()
      .catch((err: unknown) => logger.warn({ err }, 'could not renew the worker advert'))
      .finally(() => {
        publishing = undefined;
        if (again) {
          again = false;
          refresh();
        }
      });
  };
  return {
    refresh,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await publishing;
      redis.off('ready', renew);
      if (key) await redis.del(key).catch(() => undefined);
    },
  };
}

/** Every live advert on this queue; malformed ones (another version's) are skipped. */
export async function listWorkerAdverts(redis: Redis, queue: string): Promise<WorkerAdvert[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${keyPrefix(queue)}*`, 'COUNT', 200);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  if (keys.length === 0) return [];
  const values = await redis.mget(...keys);
  return values.flatMap((value) => {
    if (!value) return [];
    try {
      const parsed = advertSchema.safeParse(JSON.parse(value));
      return parsed.success ? [parsed.data] : [];
    } catch {
      return [];
    }
  });
}
