import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { ContainerRuntime } from '../executor/runtime.js';
import { packTar, type TarEntry } from '../executor/archive.js';
import { KfarmError } from '../errors/kfarm-error.js';
import { parseHeaderPackages, resolveImageKernels } from '../matrix/debian-kernels.js';
import { imagesDir } from '../paths.js';
import { ensureBaseImage } from './base-image.js';
import { LABEL_RECIPE, imageRef } from './catalog.js';

export interface ImageBuildRequest {
  name: string;
  /** kernel selector against the archive's headers; default: the recipe's default set */
  kernels?: string;
  /** a bookworm image to start from instead of kfarm/base:bookworm */
  baseImage?: string;
}

export interface ImageBuildResult {
  ref: string;
  kernels: string[];
  /** false when an image with the same recipe, base and kernels existed: nothing was built */
  built: boolean;
}

/** The recipes kfarm knows; each is a folder in images/. */
export const RECIPES = ['debian-12'] as const;

/**
 * Builds kfarm/<name>:latest from images/<name>/. Cached by content: the tag
 * kfarm/<name>:<hash> names the recipe files, the base image and the kernel list, so a rerun
 * with nothing changed builds nothing.
 */
export async function buildImage(runtime: ContainerRuntime, request: ImageBuildRequest, logger: Logger, say: (line: string) => void): Promise<ImageBuildResult> {
  if (!(RECIPES as readonly string[]).includes(request.name)) {
    throw new KfarmError('BAD_OPTION', `no image recipe named ${request.name}`, { hint: `Recipes: ${RECIPES.join(', ')} (folders in images/).` });
  }
  await runtime.ping();
  const base = request.baseImage ?? (await ensureBaseImage(runtime, logger, say));
  const baseInfo = await runtime.inspectImage(base);
  if (!baseInfo) throw new KfarmError('IMAGE_NOT_FOUND', `base image ${base} is not present`, { hint: 'Load or build it first, or leave out --base-image.' });

  const recipeDir = path.join(imagesDir, request.name);
  const files = await recipeFiles(recipeDir);
  say('asking the Debian archive which kernel headers it has');
  const available = await archiveKernels(runtime, base, files);
  const kernels = resolveImageKernels(request.kernels, available);
  say(`kernels: ${kernels.join(' ')}`);

  const hash = recipeHash(files, baseInfo.id, kernels);
  const hashRef = `kfarm/${request.name}:${hash.slice(0, 16)}`;
  const ref = imageRef(request.name);
  const existing = await runtime.inspectImage(hashRef);
  if (existing) {
    await runtime.tagImage(hashRef, `kfarm/${request.name}`, 'latest');
    say(`${ref} is up to date (${hashRef})`);
    return { ref, kernels, built: false };
  }
  say(`building ${ref} (a few minutes: each kernel's headers are downloaded and installed)`);
  await runtime.buildImage({
    context: await packTar(files),
    tag: hashRef,
    buildArgs: { BASE_IMAGE: base, KERNELS: kernels.join(' ') },
    labels: { [LABEL_RECIPE]: hash },
    onLine: (line) => {
      logger.debug({ image: request.name }, line);
      // the Dockerfile's steps are the progress a person waiting minutes wants to see
      if (/^Step \d+\/\d+ : /.test(line)) say(`  ${line.length > 150 ? `${line.slice(0, 147)}...` : line}`);
    },
  });
  await runtime.tagImage(hashRef, `kfarm/${request.name}`, 'latest');
  say(`built ${ref} with ${kernels.length} kernel(s)`);
  return { ref, kernels, built: true };
}

async function recipeFiles(dir: string): Promise<TarEntry[]> {
  const names = (await readdir(dir)).sort();
  return Promise.all(names.map(async (name) => ({ path: name, type: 'file' as const, mode: 0o644, data: await readFile(path.join(dir, name)) })));
}

function recipeHash(files: readonly TarEntry[], baseId: string, kernels: readonly string[]): string {
  const h = createHash('sha256');
  for (const f of files) h.update(`${f.path}\0`).update(f.data ?? Buffer.alloc(0)).update('\0');
  h.update(`base\0${baseId}\0kernels\0${kernels.join(' ')}`);
  return h.digest('hex');
}

/** Runs apt inside the base image, with the recipe's sources, to list the headers on offer. */
async function archiveKernels(runtime: ContainerRuntime, base: string, files: readonly TarEntry[]): Promise<string[]> {
  const sources = files.find((f) => f.path === 'debian.sources');
  const input = sources?.data
    ? await packTar([{ path: 'etc/apt/sources.list.d/debian.sources', type: 'file', mode: 0o644, data: sources.data }])
    : undefined;
  const script = 'rm -f /etc/apt/sources.list; apt-get update -qq >/dev/null 2>&1 || { echo "apt-get update failed" >&2; apt-get update; exit 1; }; apt-cache pkgnames linux-headers-';
  const result = await runtime.runHelper(base, ['bash', '-c', script], input);
  if (result.exitCode !== 0) {
    throw new KfarmError('IMAGE_BUILD_FAILED', `could not read the Debian archive from ${base}: ${result.output.trim().split('\n').slice(-3).join(' | ')}`, {
      hint: 'The image build needs the Debian archive (images/debian-12/debian.sources); check the network or point it at a reachable mirror.',
    });
  }
  const kernels = parseHeaderPackages(result.output);
  if (kernels.length === 0) throw new KfarmError('IMAGE_BUILD_FAILED', 'the Debian archive lists no linux-headers packages');
  return kernels;
}

