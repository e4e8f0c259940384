import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { discoverKernels, type ArchiveKernel } from '../archive/discover.js';
import { RELEASES, type ReleaseSpec } from '../archive/releases.js';
import type { ContainerRuntime } from '../executor/runtime.js';
import { packTar, type TarEntry } from '../executor/archive.js';
import { KfarmError } from '../errors/kfarm-error.js';
import { mapLimit } from '../util/map-limit.js';
import { resolveImageKernels } from '../matrix/debian-kernels.js';
import { compareKernels } from '../matrix/kernel-target.js';
import { imagesDir } from '../paths.js';
import { cleanText } from '../util/clean-text.js';
import { LABEL_ARCHIVE, archiveBuildNetwork, archiveContextFiles, archiveLabel, archiveSourceHash, withArchiveSource, type ArchiveBuildSource } from './archive-recipe.js';
import { ensureBaseImage } from './base-image.js';
import { LABEL_ARCH, LABEL_FLAVOUR, LABEL_HEADERS_VERSION, LABEL_IMAGE, LABEL_KERNELS, LABEL_RECIPE, LABEL_RECIPE_FILES, LABEL_RELEASE, imageRef } from './catalog.js';
import { recipeFilesHash } from './recipe-files.js';
import { aptDependencies, crossBuildArgs, crossGcc, crossKernelRecipeHash, crossToolchainHash, crossToolchainRef, kernelRecipeHash } from './kernel-recipe.js';
import { kernelImageRef, toolchainRef } from './kernel-ref.js';

/**
 * The recipes kfarm knows; each is a folder in images/ with toolchain.Dockerfile and
 * debian.sources. Every release's kernel images are made by the one images/kernel.Dockerfile.
 */
export const RECIPES = ['debian-11', 'debian-12', 'debian-13', 'debian-testing', 'debian-unstable', 'debian-experimental'] as const;
/** arches a recipe builds for: amd64 natively, arm64 cross-built on amd64 (images/cross/) */
export const RECIPE_ARCHES = ['amd64', 'arm64'] as const;
/** kernel images built at once: each is mostly apt download and dpkg, and the machine has 2 cores */
export const KERNEL_BUILD_CONCURRENCY = 2;

export interface Recipe {
  release: ReleaseSpec;
  toolchain: Buffer;
  kernel: Buffer;
  sources: Buffer;
}

export async function loadRecipe(name: string): Promise<Recipe> {
  const release = RELEASES.find((r) => r.name === name);
  if (!(RECIPES as readonly string[]).includes(name) || !release) {
    throw new KfarmError('BAD_OPTION', `no image recipe named ${name}`, { context: { release: name }, hint: `Recipes: ${RECIPES.join(', ')} (folders in images/).` });
  }
  const dir = path.join(imagesDir, name);
  const [toolchain, kernel, sources] = await Promise.all(
    [path.join(dir, 'toolchain.Dockerfile'), path.join(imagesDir, 'kernel.Dockerfile'), path.join(dir, 'debian.sources')].map((f) => readFile(f)),
  );
  return { release, toolchain: toolchain as Buffer, kernel: kernel as Buffer, sources: sources as Buffer };
}

/** The io.kfarm.recipe-files value an image of this recipe and arch gets now (recipe-files.ts). */
export async function currentRecipeFiles(recipe: Recipe, arch: string): Promise<string> {
  const files = { toolchain: recipe.toolchain, sources: recipe.sources, kernel: recipe.kernel };
  return recipeFilesHash(arch === 'arm64' ? { ...files, cross: await crossRecipe() } : files);
}

export interface Toolchain {
  ref: string;
  id: string;
}

/** kfarm/<release>-toolchain:latest, rebuilt only when its recipe, sources or base image changed. */
export async function ensureToolchain(runtime: ContainerRuntime, recipe: Recipe, base: string, logger: Logger, say: (line: string) => void): Promise<Toolchain> {
  const baseInfo = await runtime.inspectImage(base);
  if (!baseInfo) throw new KfarmError('IMAGE_NOT_FOUND', `base image ${base} is not present`, { hint: 'Load or build it first, or leave out --base-image.' });
  const hash = createHash('sha256').update(recipe.toolchain).update('\0').update(recipe.sources).update(`\0base\0${baseInfo.id}`).digest('hex');
  const ref = toolchainRef(recipe.release.name);
  const existing = await runtime.inspectImage(ref);
  if (existing?.labels[LABEL_RECIPE] === hash) return { ref, id: existing.id };
  say(`building the ${recipe.release.name} toolchain image ${ref}`);
  await runtime.buildImage({
    context: await packTar([
      { path: 'Dockerfile', type: 'file', mode: 0o644, data: recipe.toolchain },
      { path: 'debian.sources', type: 'file', mode: 0o644, data: recipe.sources },
    ]),
    tag: ref,
    buildArgs: { BASE_IMAGE: base },
    labels: { [LABEL_RECIPE]: hash, [LABEL_RELEASE]: recipe.release.name, 'io.kfarm.toolchain': recipe.release.name },
    onLine: (line) => logger.debug({ image: ref }, line),
  });
  const built = await runtime.inspectImage(ref);
  if (!built) throw new KfarmError('IMAGE_BUILD_FAILED', `the build of ${ref} left no image`);
  return { ref, id: built.id };
}

export interface KernelImage {
  kernel: string;
  ref: string;
  id: string;
  built: boolean;
  ms: number;
}

/**
 * One kernel's image FROM the toolchain. Cached by content (recipe, toolchain id, kernel,
 * headers version): the recipe hash label says whether the image at the kernel's tag is
 * current. Docker tags an image only once its build succeeded, so a failure leaves none.
 * With `archive` (another mirror than Debian's), apt in the build reads that mirror trusting
 * its keyring (archive-recipe.ts), and both are in the hash: a mirror or key change rebuilds.
 */
export async function ensureKernelImage(
  runtime: ContainerRuntime,
  recipe: Recipe,
  toolchain: Toolchain,
  pkg: ArchiveKernel,
  logger: Logger,
  /** another mirror than Debian's to install from (undefined: the recipe's own sources) */
  archive?: ArchiveBuildSource,
): Promise<KernelImage> {
  const started = Date.now();
  const ref = kernelImageRef(recipe.release.name, pkg.kernel);
  let dockerfile: Buffer;
  let hash: string;
  let buildArgs: Record<string, string>;
  if (pkg.arch === 'amd64') {
    dockerfile = recipe.kernel;
    hash = kernelRecipeHash(recipe.kernel, toolchain.id, pkg);
    buildArgs = { TOOLCHAIN: toolchain.ref, KERNEL: pkg.kernel, HEADERS_VERSION: pkg.version, DEPENDS: aptDependencies(pkg).join(' ') };
  } else if (pkg.arch === 'arm64') {
    const cross = await crossRecipe();
    const gcc = crossGcc(pkg);
    const args = crossBuildArgs('', pkg); // checks the archive's entry before a toolchain is built for it
    const crossToolchain = await ensureCrossToolchain(runtime, recipe, toolchain, gcc, logger);
    dockerfile = cross.kernel;
    hash = crossKernelRecipeHash(cross.kernel, crossToolchain.id, pkg);
    buildArgs = { ...args, TOOLCHAIN: crossToolchain.ref };
  } else {
    throw new KfarmError('BAD_OPTION', `kfarm cannot build images for ${pkg.arch} kernels (${pkg.kernel})`, {
      context: { kernel: pkg.kernel, arch: pkg.arch },
      hint: `Arches: ${RECIPE_ARCHES.join(', ')}.`,
    });
  }
  const recipeFiles = await currentRecipeFiles(recipe, pkg.arch);
  const context: TarEntry[] = [];
  let network: 'host' | undefined;
  const archiveLabels: Record<string, string> = {};
  if (archive) {
    archiveLabels[LABEL_ARCHIVE] = archiveLabel(archive);
    dockerfile = withArchiveSource(dockerfile);
    hash = createHash('sha256')
      .update(`${hash}\0archive\0${archiveSourceHash(archive)}`)
      .digest('hex');
    context.push(...archiveContextFiles(archive));
    network = archiveBuildNetwork(archive.mirrors);
  }
  const existing = await runtime.inspectImage(ref);
  // both labels: an image of kfarm before recipe-files has the right cache hash but no label, and
  // is rebuilt once (Docker's layer cache makes that a relabel) so that sync can judge it later
  if (existing?.labels[LABEL_RECIPE] === hash && existing.labels[LABEL_RECIPE_FILES] === recipeFiles) {
    return { kernel: pkg.kernel, ref, id: existing.id, built: false, ms: Date.now() - started };
  }
  const tail: string[] = [];
  try {
    await runtime.buildImage({
      context: await packTar([{ path: 'Dockerfile', type: 'file', mode: 0o644, data: dockerfile }, ...context]),
      tag: ref,
      buildArgs,
      ...(network ? { network } : {}),
      labels: {
        [LABEL_IMAGE]: recipe.release.name,
        [LABEL_RELEASE]: recipe.release.name,
        [LABEL_KERNELS]: pkg.kernel,
        [LABEL_ARCH]: pkg.arch === 'arm64' ? 'aarch64' : 'x86_64',
        [LABEL_FLAVOUR]: pkg.flavour,
        [LABEL_HEADERS_VERSION]: pkg.version,
        [LABEL_RECIPE]: hash,
        [LABEL_RECIPE_FILES]: recipeFiles,
        'io.kfarm.distro': 'debian',
        ...archiveLabels,
      },
      onLine: (line) => {
        logger.debug({ kernel: pkg.kernel }, line);
        const clean = cleanText(line, 300).trim();
        if (clean) tail.push(clean);
        if (tail.length > 5) tail.shift();
      },
    });
  } catch (err) {
    throw new KfarmError('IMAGE_BUILD_FAILED', `the image for ${pkg.kernel} did not build: ${tail.join(' | ').slice(-400)}`, {
      cause: err,
      context: { kernel: pkg.kernel, headersVersion: pkg.version },
      hint: 'Nothing was tagged for it; the other kernels are untouched. Rerun to retry (the archive may have moved on: `kfarm kernels --available`).',
    });
  }
  const built = await runtime.inspectImage(ref);
  if (!built) throw new KfarmError('IMAGE_BUILD_FAILED', `the build of ${ref} left no image`);
  // the image the tag named before (an older headers upload) is now untagged: drop it
  if (existing && existing.id !== built.id && existing.tags.length <= 1) await runtime.removeImages([existing.id]);
  return { kernel: pkg.kernel, ref, id: built.id, built: true, ms: Date.now() - started };
}

/** The shared cross recipe (images/cross/), read once: the same files serve every release. */
interface CrossRecipe {
  toolchain: Buffer;
  kernel: Buffer;
}
let crossRecipeFiles: Promise<CrossRecipe> | undefined;
function crossRecipe(): Promise<CrossRecipe> {
  crossRecipeFiles ??= Promise.all(['arm64-toolchain.Dockerfile', 'arm64-kernel.Dockerfile'].map((f) => readFile(path.join(imagesDir, 'cross', f)))).then(
    ([toolchain, kernel]) => ({ toolchain: toolchain as Buffer, kernel: kernel as Buffer }),
  );
  crossRecipeFiles.catch(() => (crossRecipeFiles = undefined));
  return crossRecipeFiles;
}

/** cross toolchains being ensured or ensured, by (release toolchain id, gcc): kernel images built at once share one */
const crossToolchains = new Map<string, Promise<Toolchain>>();

/**
 * kfarm/<release>-toolchain:arm64-gcc-N: the release's toolchain with gcc-N-aarch64-linux-gnu,
 * rebuilt only when the cross recipe or the release toolchain changed. Memoized per process, so
 * the arm64 kernels of one sync wait for one build of it; a failure is forgotten, so a retry builds again.
 */
export function ensureCrossToolchain(runtime: ContainerRuntime, recipe: Recipe, toolchain: Toolchain, gcc: number, logger: Logger): Promise<Toolchain> {
  const key = `${toolchain.id}\0${gcc}`;
  let pending = crossToolchains.get(key);
  if (!pending) {
    pending = buildCrossToolchain(runtime, recipe, toolchain, gcc, logger);
    crossToolchains.set(key, pending);
    pending.catch(() => crossToolchains.delete(key));
  }
  return pending;
}

async function buildCrossToolchain(runtime: ContainerRuntime, recipe: Recipe, toolchain: Toolchain, gcc: number, logger: Logger): Promise<Toolchain> {
  const cross = await crossRecipe();
  const hash = crossToolchainHash(cross.toolchain, toolchain.id, gcc);
  const ref = crossToolchainRef(recipe.release.name, gcc);
  const existing = await runtime.inspectImage(ref);
  if (existing?.labels[LABEL_RECIPE] === hash) return { ref, id: existing.id };
  logger.info({ image: ref }, `building the ${recipe.release.name} arm64 cross toolchain (gcc-${gcc}-aarch64-linux-gnu)`);
  const tail: string[] = [];
  try {
    await runtime.buildImage({
      context: await packTar([{ path: 'Dockerfile', type: 'file', mode: 0o644, data: cross.toolchain }]),
      tag: ref,
      buildArgs: { TOOLCHAIN: toolchain.ref, GCC: String(gcc) },
      labels: { [LABEL_RECIPE]: hash, [LABEL_RELEASE]: recipe.release.name, 'io.kfarm.toolchain': recipe.release.name, 'io.kfarm.cross': `aarch64-gcc-${gcc}` },
      onLine: (line) => {
        logger.debug({ image: ref }, line);
        const clean = cleanText(line, 300).trim();
        if (clean) tail.push(clean);
        if (tail.length > 5) tail.shift();
      },
    });
  } catch (err) {
    throw new KfarmError('IMAGE_BUILD_FAILED', `the ${recipe.release.name} arm64 cross toolchain (gcc-${gcc}-aarch64-linux-gnu) did not build: ${tail.join(' | ').slice(-400)}`, {
      cause: err,
      context: { release: recipe.release.name, gcc },
      hint: 'No arm64 kernel image of this release can be built without it; rerun to retry (the archive must offer that cross compiler for amd64).',
    });
  }
  const built = await runtime.inspectImage(ref);
  if (!built) throw new KfarmError('IMAGE_BUILD_FAILED', `the build of ${ref} left no image`);
  return { ref, id: built.id };
}

export interface ImageBuildRequest {
  name: string;
  /** kernel selector against the archive's headers; default: the recipe's default set */
  kernels?: string;
  /** a Debian image of the release to start from instead of kfarm/base:<codename> */
  baseImage?: string;
  /** where the archive's indexes are cached (the state dir's archive/) */
  archiveCacheDir: string;
}

export interface ImageBuildResult {
  ref: string;
  kernels: string[];
  images: KernelImage[];
  /** false when every kernel's image was current: nothing was built */
  built: boolean;
}

/**
 * `kfarm images build <release>`: the toolchain image and one image per selected kernel
 * (default: the two newest 6.1 ABIs and the newest 6.12, generic amd64). kfarm/<release>:latest
 * names the oldest of them, for tools that want one image of the release.
 */
export async function buildImage(runtime: ContainerRuntime, request: ImageBuildRequest, logger: Logger, say: (line: string) => void): Promise<ImageBuildResult> {
  const recipe = await loadRecipe(request.name);
  await runtime.ping();
  say('asking the Debian archive which kernel headers it has');
  const discovery = await discoverKernels([recipe.release], ['amd64'], { cacheDir: request.archiveCacheDir, logger, checkFetch: false });
  for (const w of discovery.warnings) say(`warning: ${w}`);
  const byKernel = new Map(discovery.kernels.map((k) => [k.kernel, k]));
  const kernels = resolveImageKernels(request.kernels, [...byKernel.keys()].sort(compareKernels));
  say(`kernels: ${kernels.join(' ')}`);
  const base = request.baseImage ?? (await ensureBaseImage(runtime, logger, say, recipe.release.codename));
  const toolchain = await ensureToolchain(runtime, recipe, base, logger, say);
  const images = await mapLimit(kernels, KERNEL_BUILD_CONCURRENCY, async (kernel) => {
    const pkg = byKernel.get(kernel);
    if (!pkg) throw new KfarmError('IMAGE_BUILD_FAILED', `the archive has no headers package for ${kernel}`);
    const image = await ensureKernelImage(runtime, recipe, toolchain, pkg, logger);
    say(`  ${kernel}: ${image.built ? `built in ${Math.round(image.ms / 1000)}s` : 'up to date'} (${image.ref})`);
    return image;
  });
  const first = images[0];
  if (first) await runtime.tagImage(first.ref, `kfarm/${recipe.release.name}`, 'latest');
  await removeOlderLayout(runtime, recipe.release.name, say);
  const built = images.some((i) => i.built);
  say(built ? `built ${images.filter((i) => i.built).length} kernel image(s) on ${toolchain.ref}` : `${request.name} is up to date`);
  return { ref: imageRef(recipe.release.name), kernels, images, built };
}

/** Images of the one-image-many-kernels layout would hold the same kernels twice: untag them. */
async function removeOlderLayout(runtime: ContainerRuntime, release: string, say: (line: string) => void): Promise<void> {
  const old = (await runtime.listImages(LABEL_IMAGE)).filter((i) => i.labels[LABEL_IMAGE] === release && (i.labels[LABEL_KERNELS] ?? '').trim().split(/\s+/).length > 1);
  for (const image of old) {
    const tags = image.tags.filter((t) => t.startsWith(`kfarm/${release}:`));
    if (tags.length === 0) continue;
    const result = await runtime.removeImages(tags);
    say(result.ok ? `removed the older many-kernel image ${tags.join(', ')}` : `could not remove the older image ${tags.join(', ')}: ${result.output}`);
  }
}
