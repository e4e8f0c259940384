import { Command } from 'commander';
import { DockerRuntime } from '../../executor/docker-runtime.js';
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
  return new Command('kernels').description('every kernel available to build for').action(async () => {
    const runtime = new DockerRuntime();
    await runtime.ping();
    const list = await listKfarmImages(runtime);
    const rows = list.flatMap((i) => i.kernels.map((k) => [k, i.arch, i.name]));
    ctx.out(rows.length ? formatTable(['KERNEL', 'ARCH', 'IMAGE'], rows) : 'no kernels: build an image with `kfarm images build debian-12`');
  });
}
