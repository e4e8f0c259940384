import { Command } from 'commander';
import { DEFAULT_MIRRORS, RELEASES } from '../../archive/releases.js';
import type { CliContext } from '../context.js';
import { RECIPE_ARCH_NAMES, RECIPE_NAMES } from '../help-values.js';
import type { ImagesSyncCliOptions, KernelsCliOptions } from '../option-types.js';

const actions = () => import('../actions/images.js');

export function imagesCommand(ctx: CliContext): Command {
  const images = new Command('images').description('build and list the images that hold kernel headers');
  images
    .command('build')
    .description(`build an image from images/<name>/ (recipes: ${RECIPE_NAMES.join(', ')}); cached by content`)
    .argument('<name>', 'recipe name, e.g. debian-12')
    .option('-k, --kernels <selector>', 'kernels to put in it, matched against the archive (default: two newest 6.1 ABIs and the newest 6.12)')
    .option('--base-image <ref>', 'Debian base image of the release to start from (default: kfarm/base:<codename>, pulled or bootstrapped)')
    .action(async (name: string, opts: { kernels?: string; baseImage?: string }) => (await actions()).imagesBuildAction(ctx, name, opts));
  images
    .command('sync')
    .description('add an image for every kernel the Debian archive offers and this engine lacks (one image per kernel on the release toolchain); idempotent')
    .argument('[release...]', `releases (image recipes: ${RECIPE_NAMES.join(', ')}; default the released ones, debian-testing/-unstable/-experimental only when named)`)
    .option('--arch <list>', `arches, comma-separated (${RECIPE_ARCH_NAMES.join(', ')})`, RECIPE_ARCH_NAMES.join(','))
    .option('--flavours <list>', 'Debian flavours to add, comma-separated (e.g. amd64,cloud-amd64,rt-amd64; default all)')
    .option('-k, --kernels <selector>', 'add only these kernels (a selector, as for build: 6.1.0-4*-amd64, release:debian-12, next)')
    .option('--prune', 'remove the kernels the archive no longer offers')
    .option('--base-image <ref>', 'Debian base image of the release to start from (default: kfarm/base:<codename>, pulled or bootstrapped)')
    .option('--mirror <url>', `Debian mirror to read the indexes from (default ${DEFAULT_MIRRORS.debian})`)
    .option('--security-mirror <url>', `Debian security mirror to read the indexes from (default ${DEFAULT_MIRRORS['debian-security']})`)
    .option('--keyring <file>', KEYRING_HELP)
    .action(async (names: string[], opts: ImagesSyncCliOptions) => (await actions()).imagesSyncAction(ctx, names, opts));
  images
    .command('list')
    .description('each kernel image: release, kernel, headers version, and the disk its own layer takes over the shared toolchain')
    .action(async () => (await actions()).imagesListAction(ctx));
  return images;
}

export function kernelsCommand(ctx: CliContext): Command {
  return new Command('kernels')
    .description("every kernel available to build for: on this engine, or with REDIS_URL on the farm's workers; with --available, every kernel the Debian archive offers")
    .argument('[release...]', `with --available: releases to list (${RELEASES_AVAILABLE}; default the released ones)`)
    .option('--available', 'list the kernels the Debian archive offers, marked held or not, newest first')
    .option('--arch <list>', 'with --available: arches, comma-separated (amd64,arm64; x86_64 and aarch64 also work; default all)')
    .option('--json', 'with --available: one JSON array on stdout')
    .option('--mirror <url>', `with --available: Debian mirror to read the indexes from (default ${DEFAULT_MIRRORS.debian})`)
    .option('--security-mirror <url>', `with --available: Debian security mirror (default ${DEFAULT_MIRRORS['debian-security']})`)
    .option('--keyring <file>', `with --available: ${KEYRING_HELP}`)
    .action(async (releases: string[], opts: KernelsCliOptions) => (await actions()).kernelsAction(ctx, releases, opts));
}

const KEYRING_HELP = "keyring the mirrors' InRelease files are checked with (default $KFARM_ARCHIVE_KEYRING, else Debian's keys)";

const RELEASES_AVAILABLE = RELEASES.map((r) => r.name).join(', ');
