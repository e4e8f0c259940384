import path from 'node:path';
import { availableRows, availableSummary } from '../../archive/available.js';
import { discoverKernels } from '../../archive/discover.js';
import { resolveArches, resolveReleases } from '../../archive/releases.js';
import { archiveCacheDir, resolveArchiveSource } from '../../archive/archive-source.js';
import { KfarmError, isKfarmError } from '../../errors/kfarm-error.js';
import { env } from '../../config/env.js';
import { farmCatalog } from '../../coordinator/farm-catalog.js';
import { DockerRuntime } from '../../executor/docker-runtime.js';
import { closeConnection, connectChecked, describeTarget } from '../../queue/redis-connection.js';
import { listKfarmImages } from '../../images/catalog.js';
import { crossToolchainRef } from '../../images/kernel-recipe.js';
import { toolchainRef } from '../../images/kernel-ref.js';
import { buildImage } from '../../images/image-builder.js';
import { syncImages } from '../../images/image-sync.js';
import { syncProgress } from '../sync-progress.js';
import { rootLogger } from '../../logging/logger.js';
import { formatDuration, formatTable } from '../render.js';
import type { ImagesSyncCliOptions, KernelsCliOptions } from '../option-types.js';
import type { CliContext } from '../context.js';
import { usableStateDir } from '../../config/state-dir.js';
import { AVAILABLE_HEADERS, HELD_HEADERS, availableCells, availableWithStage, heldRows } from '../kernels-table.js';

/** `kfarm images build|sync|list` and `kfarm kernels` (options: commands/images.ts) */
export async function imagesBuildAction(ctx: CliContext, name: string, opts: { kernels?: string; baseImage?: string }): Promise<void> {
  await usableStateDir(env.stateDir);
  const result = await buildImage(
    new DockerRuntime(),
    {
      name,
      archiveCacheDir: path.join(env.stateDir, 'archive'),
      ...(opts.kernels ? { kernels: opts.kernels } : {}),
      ...(opts.baseImage ? { baseImage: opts.baseImage } : {}),
    },
    rootLogger,
    (line) => ctx.progress(line),
  );
  ctx.out(`${result.ref}: ${result.kernels.join(' ')}${result.built ? '' : ' (unchanged)'}`);
}

export async function imagesSyncAction(ctx: CliContext, names: string[], opts: ImagesSyncCliOptions): Promise<void> {
  await usableStateDir(env.stateDir);
  const started = Date.now();
  const flavours = opts.flavours?.split(/[\s,]+/).filter(Boolean);
  const source = resolveArchiveSource(opts);
  const request = {
    // none named: the released ones (the pre-release suites are synced when named)
    releases: resolveReleases(names),
    arches: resolveArches(opts.arch),
    prune: opts.prune === true,
    archiveCacheDir: archiveCacheDir(env.stateDir, source.mirrors),
    ...source,
    ...(flavours && flavours.length > 0 ? { flavours } : {}),
    ...(opts.kernels ? { kernels: opts.kernels } : {}),
    ...(opts.baseImage ? { baseImage: opts.baseImage } : {}),
  };
  const live = syncProgress(ctx);
  const result = await syncImages(new DockerRuntime(), request, rootLogger, live.output).finally(() => live.done());
  const { plan } = result;
  ctx.out(
    `added ${result.added.length}, pruned ${result.pruned.length}, unchanged ${plan.unchanged.length}, ` +
      `not fetchable ${plan.unfetchable.length}, failed ${result.failed.length}${result.waiting.length ? `, waiting ${result.waiting.length} (pre-release: dependencies not in the suite yet)` : ''} (${formatDuration(Date.now() - started)})`,
  );
  if (result.failed.length > 0) {
    throw new KfarmError('IMAGE_BUILD_FAILED', `${result.failed.length} kernel image(s) did not build: ${result.failed.map((f) => f.kernel).join(', ')}`, {
      hint: 'No image was left for them and the other kernels are untouched; rerun `kfarm images sync` to retry them.',
    });
  }
}

export async function imagesListAction(ctx: CliContext): Promise<void> {
  const runtime = new DockerRuntime();
  await runtime.ping();
  const list = await listKfarmImages(runtime);
  if (list.length === 0) {
    ctx.out('no kfarm images; add kernels with `kfarm images sync debian-12` (`kfarm kernels --available` lists them)');
    return;
  }
  // each kernel image is its toolchain plus one layer: the layer is what the kernel costs.
  // An arm64 kernel's toolchain is its release's cross toolchain (label io.kfarm.cross=aarch64-gcc-N).
  const toolchainOf = new Map<string, string>();
  for (const i of list) {
    const cross = i.arch === 'aarch64' ? /^aarch64-gcc-(\d+)$/.exec((await runtime.inspectImage(i.id))?.labels['io.kfarm.cross'] ?? '') : null;
    toolchainOf.set(i.id, cross?.[1] ? crossToolchainRef(i.name, Number(cross[1])) : toolchainRef(i.name));
  }
  const toolchains = [...new Set(toolchainOf.values())];
  const sizes = await runtime.imageSizes([...new Set(list.map((i) => i.id)), ...toolchains]);
  const toolchainIds = new Map<string, string>();
  for (const ref of toolchains) {
    const info = await runtime.inspectImage(ref);
    if (info) toolchainIds.set(ref, info.id);
  }
  const mb = (bytes: number | undefined) => (bytes === undefined ? '-' : `${Math.round(bytes / 1e6)} MB`);
  const own = (i: (typeof list)[number]) => {
    const size = sizes.get(i.id);
    const shared = sizes.get(toolchainIds.get(toolchainOf.get(i.id) ?? '') ?? '');
    return size === undefined ? undefined : size - (shared ?? 0);
  };
  ctx.out(
    formatTable(
      ['RELEASE', 'KERNEL', 'ARCH', 'HEADERS VERSION', 'OWN SIZE', 'REF', 'ID'],
      list.map((i) => [i.name, i.kernels.join(' '), i.arch, i.headersVersion ?? '-', mb(own(i)), i.ref, i.id.replace(/^sha256:/, '').slice(0, 12)]),
    ),
  );
  const uniqueOwn = [...new Map(list.map((i) => [i.id, own(i) ?? 0])).values()].reduce((a, b) => a + b, 0);
  for (const [ref, id] of toolchainIds) ctx.progress(`${ref}: ${mb(sizes.get(id))}, shared by its release's kernel images`);
  ctx.progress(`${list.length} kernel(s); their own layers take ${mb(uniqueOwn)} over the toolchain(s)`);
}

export async function kernelsAction(ctx: CliContext, releases: string[], opts: KernelsCliOptions): Promise<void> {
  if (opts.available) {
    await usableStateDir(env.stateDir);
    await listAvailable(ctx, releases, opts);
    return;
  }
  if (releases.length > 0 || opts.arch || opts.json || opts.mirror || opts.securityMirror || opts.keyring) {
    throw new KfarmError('BAD_OPTION', 'releases, --arch, --json, --mirror, --security-mirror and --keyring go with --available', {
      hint: 'e.g. `kfarm kernels --available debian-12 --arch arm64`',
    });
  }
  const redis = env.redisUrl ? await connectChecked({ url: env.redisUrl }) : undefined;
  try {
    const catalog = await farmCatalog({
      runtime: new DockerRuntime(),
      farm: redis && env.redisUrl ? { redis, queueName: env.queueName, where: describeTarget({ url: env.redisUrl }) } : undefined,
    });
    for (const conflict of catalog.conflicts) ctx.progress(`warning: ${conflict}`);
    ctx.out(formatTable(HELD_HEADERS, heldRows(catalog.images)));
  } finally {
    if (redis) closeConnection(redis);
  }
}

/** `kfarm kernels --available`: the archive (cached in the state dir) against the kernels held. */
async function listAvailable(ctx: CliContext, releaseNames: readonly string[], opts: KernelsCliOptions): Promise<void> {
  const releases = resolveReleases(releaseNames);
  const arches = resolveArches(opts.arch);
  const source = resolveArchiveSource(opts);
  const started = Date.now();
  const discovery = await discoverKernels(releases, arches, { cacheDir: archiveCacheDir(env.stateDir, source.mirrors), logger: rootLogger, ...source });
  for (const w of discovery.warnings) ctx.progress(`warning: ${w}`);
  const held = await heldKernels(ctx);
  const rows = availableWithStage(availableRows(discovery.kernels, held));
  if (opts.json) {
    ctx.out(JSON.stringify(rows, null, 2));
  } else {
    ctx.out(formatTable(AVAILABLE_HEADERS, availableCells(rows)));
  }
  for (const line of availableSummary(rows)) ctx.progress(line);
  const fresh = discovery.indexes.filter((i) => !i.fromCache).length;
  ctx.progress(`${rows.length} kernels in ${formatDuration(Date.now() - started)} (${fresh} of ${discovery.indexes.length} indexes downloaded, the rest cached)`);
}

/** What the farm holds; no engine, no worker or no image means none held (said on stderr), not a failure: the archive is the subject. */
async function heldKernels(ctx: CliContext): Promise<Array<{ kernel: string; arch: string }>> {
  let redis: Awaited<ReturnType<typeof connectChecked>> | undefined;
  try {
    redis = env.redisUrl ? await connectChecked({ url: env.redisUrl }) : undefined;
    const catalog = await farmCatalog({
      runtime: new DockerRuntime(),
      farm: redis && env.redisUrl ? { redis, queueName: env.queueName, where: describeTarget({ url: env.redisUrl }) } : undefined,
    });
    return catalog.images.flatMap((i) => i.kernels.map((kernel) => ({ kernel, arch: i.arch })));
  } catch (err) {
    if (isKfarmError(err, 'NO_IMAGES')) return [];
    if (isKfarmError(err, 'DOCKER_UNREACHABLE') || isKfarmError(err, 'NO_WORKERS') || isKfarmError(err, 'REDIS_UNREACHABLE')) {
      ctx.progress(`warning: ${err.message}: every kernel is shown as not held`);
      return [];
    }
    throw err;
  } finally {
    if (redis) closeConnection(redis);
  }
}
