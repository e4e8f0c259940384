import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { env } from '../../config/env.js';
import { resolveArchiveSource } from '../../archive/archive-source.js';
import { resolveArches, resolveReleases } from '../../archive/releases.js';
import { KfarmError } from '../../errors/kfarm-error.js';
import { DockerRuntime } from '../../executor/docker-runtime.js';
import { rootLogger } from '../../logging/logger.js';
import { startService } from '../../service/serve.js';
import type { CliContext } from '../context.js';
import { EXIT, exitCodeFor } from '../exit-codes.js';
import type { ServeCliOptions } from '../option-types.js';
import { signingOption } from '../signing-option.js';
import type { BuildRow } from '../../service/farm-db.js';

/** serve's options; --prune-gone-after (in ms) is read only here */
type ServeOptions = ServeCliOptions & { pruneGoneAfter?: number };

/** `kfarm serve` (options: commands/serve.ts): runs until SIGINT/SIGTERM; a running build is resumed at the next start. */
export async function serveAction(ctx: CliContext, opts: ServeOptions): Promise<void> {
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) {
    throw new KfarmError('BAD_OPTION', `${opts.tlsCert ? '--tls-cert' : '--tls-key'} given without ${opts.tlsCert ? '--tls-key' : '--tls-cert'}`, {
      hint: 'HTTPS needs both: --tls-cert chain.pem --tls-key key.pem.',
    });
  }
  const tls = opts.tlsCert && opts.tlsKey ? { cert: await readPem(opts.tlsCert), key: await readPem(opts.tlsKey) } : undefined;
  const publish = await farmPublisher(ctx, opts);
  const watch = watchConfig(opts);
  if ((opts.webhook === undefined) !== (opts.webhookSecretFile === undefined)) {
    throw new KfarmError('BAD_OPTION', `${opts.webhook ? '--webhook' : '--webhook-secret-file'} given without ${opts.webhook ? '--webhook-secret-file' : '--webhook'}`, {
      hint: 'A webhook is signed: --webhook https://hooks.example/kfarm --webhook-secret-file webhook.secret (openssl rand -hex 32 > webhook.secret).',
    });
  }
  const signing = await farmSigning(opts);
  const service = await startService({
    env,
    runtime: new DockerRuntime(),
    logger: rootLogger,
    listen: { ...opts.listen, ...(tls ? { tls } : {}) },
    exitCodeFor,
    ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
    ...(publish ? { publish } : {}),
    ...(signing ? { signing } : {}),
    ...(watch ? { watch } : {}),
    ...(opts.webhook && opts.webhookSecretFile ? { webhook: { url: opts.webhook, secretFile: opts.webhookSecretFile } } : {}),
  });
  ctx.progress(`kfarm serve: listening on ${service.url}${service.resumed ? ` (${service.resumed} unfinished build(s) resumed)` : ''}; API: ${service.url}/api/v1/openapi.json`);
  await new Promise<void>((resolve) => (ctx.signal.aborted ? resolve() : ctx.signal.addEventListener('abort', () => resolve(), { once: true })));
  await service.close();
  ctx.setExitCode(EXIT.ok);
}

async function readPem(file: string): Promise<Buffer> {
  return readFile(file).catch((err: NodeJS.ErrnoException) => {
    throw new KfarmError('BAD_OPTION', `cannot read ${file} (${err.code ?? err.message})`, { context: { file }, hint: 'Give a readable PEM file.' });
  });
}

/**
 * The farm's repositories, checked now as `kfarm build --apt` checks them (a key that cannot sign
 * stops the service from starting, exit 2), then used after each registered module's build with
 * the publishers `kfarm publish` uses; a target the build's formats do not feed is skipped.
 */
async function farmPublisher(ctx: CliContext, opts: ServeCliOptions): Promise<((build: BuildRow, outDir: string) => Promise<void>) | undefined> {
  const { checkBuildOci, checkOciOptions, publishOciFromCli } = await import('./publish-oci.js');
  checkOciOptions(opts);
  const repos = opts.apt !== undefined || opts.dnf !== undefined || opts.repoKey !== undefined;
  if (!repos && opts.oci === undefined) return undefined;
  const { preparePublish } = await import('./publish.js');
  const prepared = repos ? await preparePublish(opts, { apt: true, dnf: true }) : undefined;
  const logged: CliContext = { ...ctx, out: (line) => rootLogger.info({ publish: line }, 'published'), progress: (line) => rootLogger.warn(line) };
  return async (build, outDir) => {
    const formats = new Set(build.formats);
    const feeds = { apt: formats.has('bmdeb') || formats.has('dkms-deb'), dnf: formats.has('kmod-rpm') || formats.has('dkms-rpm') };
    const targets = { ...opts, ...(feeds.apt ? {} : { apt: undefined }), ...(feeds.dnf ? {} : { dnf: undefined }) };
    if (prepared && (targets.apt !== undefined || targets.dnf !== undefined)) {
      await (await preparePublish(targets, feeds)).publish(logged, [outDir]);
    }
    if (opts.oci !== undefined && formats.has('kmm')) {
      checkBuildOci(opts, build.formats.join(','));
      await publishOciFromCli(logged, [outDir], opts);
    }
  };
}

/** --watch and its scope; the scope's options without --watch are refused (they would do nothing) */
function watchConfig(opts: ServeOptions) {
  const scoped = [opts.watchCron, opts.releases, opts.flavours, opts.mirror, opts.securityMirror, opts.keyring, opts.pruneGoneAfter].some((v) => v !== undefined);
  if (!opts.watch) {
    if (scoped) throw new KfarmError('BAD_OPTION', '--watch-cron, --releases, --flavours, --mirror, --security-mirror, --keyring and --prune-gone-after go with --watch');
    return undefined;
  }
  const releases = resolveReleases(opts.releases ? opts.releases.split(',').map((s) => s.trim()) : []);
  return {
    releases,
    arches: resolveArches(opts.arch),
    flavours: (opts.flavours ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    source: resolveArchiveSource({
      ...(opts.mirror ? { mirror: opts.mirror } : {}),
      ...(opts.securityMirror ? { securityMirror: opts.securityMirror } : {}),
      ...(opts.keyring ? { keyring: opts.keyring } : {}),
    }),
    ...(opts.watchCron ? { cron: opts.watchCron } : { every: opts.watchEvery }),
    ...(opts.pruneGoneAfter !== undefined ? { pruneGoneAfter: opts.pruneGoneAfter } : {}),
  };
}

/**
 * --sign-key/--sign-cert: the files are looked at now, so that a typo is said at start and not
 * in the first build of a module registered with sign=true; the key itself is checked as
 * kfarm build checks it, at each build (against the kernels' sign-file).
 */
async function farmSigning(opts: ServeCliOptions): Promise<{ keyPath: string; certPath: string; pin?: string } | undefined> {
  const { signing } = signingOption(opts.signKey, opts.signCert);
  if (!signing) return undefined;
  const files = { '--sign-cert': path.resolve(signing.certPath), ...(signing.keyPath.startsWith('pkcs11:') ? {} : { '--sign-key': path.resolve(signing.keyPath) }) };
  for (const [option, file] of Object.entries(files)) {
    await access(file).catch((err: unknown) => {
      throw new KfarmError('BAD_OPTION', `${option} ${file} cannot be read`, {
        cause: err,
        context: { [option]: file },
        hint: 'Give a readable PEM key and its certificate (docs/serve.md, "Signing").',
      });
    });
  }
  return { ...signing, certPath: files['--sign-cert'], ...(files['--sign-key'] ? { keyPath: files['--sign-key'] } : {}) };
}
