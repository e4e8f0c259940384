import type { Redis } from 'ioredis';
import { KfarmError, isKfarmError } from '../errors/kfarm-error.js';
import type { ContainerRuntime } from '../executor/runtime.js';
import { catalogFromAdverts, listKfarmImages, type KfarmImage } from '../images/catalog.js';
import { listWorkerAdverts } from '../queue/worker-registry.js';

export interface FarmCatalog {
  images: KfarmImage[];
  /** workers that disagree on an image's content: worth a warning */
  conflicts: string[];
  /** where the list came from, for progress output */
  from: string;
}

/**
 * The kernels this farm can build for. Locally: the images on this Docker engine. With
 * REDIS_URL: what the workers advertise, so the coordinator needs no engine of its own; only
 * when no worker has spoken yet does it fall back to a local engine, if there is one.
 */
export async function farmCatalog(deps: { runtime: ContainerRuntime; farm: { redis: Redis; queueName: string; where: string } | undefined }): Promise<FarmCatalog> {
  if (deps.farm) {
    const adverts = await listWorkerAdverts(deps.farm.redis, deps.farm.queueName);
    if (adverts.length > 0) {
      return { ...catalogFromAdverts(adverts), from: `${adverts.length} worker(s) on ${deps.farm.where}` };
    }
    try {
      await deps.runtime.ping();
    } catch (err) {
      if (!isKfarmError(err, 'DOCKER_UNREACHABLE')) throw err;
      throw new KfarmError('NO_WORKERS', `no kfarm worker is connected to ${deps.farm.where}, and there is no local Docker engine to read the kernels from`, {
        cause: err,
        hint: 'Start a worker on a host with Docker and the build images: `REDIS_URL=... kfarm worker` (it announces its kernels within a second).',
      });
    }
  } else {
    await deps.runtime.ping();
  }
  const images = await listKfarmImages(deps.runtime);
  if (images.length === 0) {
    throw new KfarmError('NO_IMAGES', 'there is no kfarm build image on this Docker engine', {
      hint: 'Add kernels: `kfarm images sync debian-12 --kernels <selector>` (`kfarm kernels --available` lists them), or run `bash scripts/setup.sh` for the default set.',
    });
  }
  return { images, conflicts: [], from: 'the local Docker engine' };
}
