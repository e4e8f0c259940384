import { Command } from 'commander';
import { env } from '../../config/env.js';
import { farmCatalog } from '../../coordinator/farm-catalog.js';
import { DockerRuntime } from '../../executor/docker-runtime.js';
import { closeConnection, connectChecked, describeTarget } from '../../queue/redis-connection.js';
import { listKfarmImages } from '../../images/catalog.js';
import { buildImage, RECIPES } from '../../images/image-builder.js';
import { rootLogger } from '../../logging/logger.js';
import { formatTable } from '../render.js';
import type { CliContext } from '../context.js';

export function imagesCommand(ctx: CliContext): Command {
  const images = new Command('images').description('build and list the images that hold kernel headers');
  images
    .command('build')
    .description(`build an image from images/<name>/ (recipes: ${RECIPES.join(', ')}); cached by content`)
    .argument('<name>', 'recipe name, e.g. debian-12')
    .option('-k, --kernels <selector>', 'kernels to put in it, matched against the archive (default: two newest 6.1 ABIs and the newest 6.12)')
    .option('--base-image <ref>', 'bookworm image to start from (default: kfarm/base:bookworm, pulled or bootstrapped)')
    .action(async (name: string, opts: { kernels?: string; baseImage?: string }) => {
      const result = await buildImage(
        new DockerRuntime(),
        { name, ...(opts.kernels ? { kernels: opts.kernels } : {}), ...(opts.baseImage ? { baseImage: opts.baseImage } : {}) },
        rootLogger,
        (line) => ctx.progress(line),
      );
      ctx.out(`${result.ref}: ${result.kernels.join(' ')}${result.built ? '' : ' (unchanged)'}`);
    });
  images
    .command('list')
    .description('each kfarm image and the kernels it holds')
    .action(async () => {
      const runtime = new DockerRuntime();
      await runtime.ping();
      const list = await listKfarmImages(runtime);
      if (list.length === 0) {
        ctx.out('no kfarm images; build one with `kfarm images build debian-12`');
        return;
      }
      ctx.out(formatTable(['IMAGE', 'REF', 'ARCH', 'KERNELS'], list.map((i) => [i.name, i.ref, i.arch, i.kernels.join(' ')])));
    });
  return images;
}

export function kernelsCommand(ctx: CliContext): Command {
  return new Command('kernels')
    .description('every kernel available to build for: on this engine, or with REDIS_URL on the farm\'s workers')
    .action(async () => {
      const redis = env.redisUrl ? await connectChecked({ url: env.redisUrl }) : undefined;
      try {
        const catalog = await farmCatalog({
          runtime: new DockerRuntime(),
          farm: redis && env.redisUrl ? { redis, queueName: env.queueName, where: describeTarget({ url: env.redisUrl }) } : undefined,
        });
        for (const conflict of catalog.conflicts) ctx.progress(`warning: ${conflict}`);
        const rows = catalog.images.flatMap((i) => i.kernels.map((k) => [k, i.arch, i.name]));
        ctx.out(formatTable(['KERNEL', 'ARCH', 'IMAGE'], rows));
      } finally {
        if (redis) closeConnection(redis);
      }
    });
}
