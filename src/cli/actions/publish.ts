import { access, constants, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isKfarmError, KfarmError } from '../../errors/kfarm-error.js';
import { rootLogger } from '../../logging/logger.js';
import { agentKeyFingerprint, openRepoKey } from '../../publish/repo-key.js';
import { readReport } from '../../report/read-report.js';
import { writeAtomic } from '../../util/write-atomic.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { checkOciOptions, publishOciFromCli } from './publish-oci.js';
import type { PublishCliOptions, PublishTargetCliOptions } from '../option-types.js';

/**
 * `kfarm publish` (options: commands/publish.ts), in one of three shapes:
 *   kfarm publish <out-dir>... [--apt <dir>] [--dnf <dir>] --repo-key <file>
 *   kfarm publish --export-key <file> --repo-key <file>
 *   kfarm publish --serve <port> [--host 127.0.0.1] <dir>
 * Mixing them is refused: each does one thing, and says so.
 */
export async function publishAction(ctx: CliContext, dirs: string[], opts: PublishCliOptions): Promise<void> {
  const targets = opts.apt !== undefined || opts.dnf !== undefined;
  checkOciOptions(opts);
  if (opts.serve !== undefined) {
    if (targets || opts.oci !== undefined || opts.exportKey !== undefined || opts.repoKey !== undefined || dirs.length !== 1) {
      throw badOption(
        '--serve <port> takes exactly one directory and no --apt, --dnf, --repo-key or --export-key',
        'kfarm publish --serve 8080 /srv/kfarm (serve a parent folder to serve both repositories)',
      );
    }
    return serve(ctx, dirs[0]!, opts.serve, opts.host);
  }
  if (opts.host !== '127.0.0.1') throw badOption('--host goes with --serve');
  if (opts.exportKey !== undefined) {
    if (targets || dirs.length > 0)
      throw badOption('--export-key only writes the public key: give it without out dirs, --apt or --dnf', 'Run `kfarm publish --export-key <file> --repo-key <file>` on its own.');
    return exportKey(ctx, opts.exportKey, requireKey(opts));
  }
  if (!targets && opts.oci === undefined) {
    throw badOption(
      'nothing to publish to: give --apt <dir>, --dnf <dir>, --oci <registry> or several',
      'kfarm publish dist --apt /srv/kfarm/apt --dnf /srv/kfarm/rpm --repo-key repo-key.asc (or --export-key, --serve)',
    );
  }
  if (dirs.length === 0) throw badOption('no out dir given: name the --out dirs of earlier `kfarm build`s to publish');
  const publisher = targets ? await preparePublish(opts, { apt: true, dnf: true }) : undefined;
  await checkOutDirs(dirs, opts);
  await publisher?.publish(ctx, dirs);
  if (opts.oci !== undefined) await publishOciFromCli(ctx, dirs, opts);
  ctx.setExitCode(EXIT.ok);
}

export interface PreparedPublish {
  /** publishes the out dirs to each target, APT first, printing what was added where */
  publish(ctx: CliContext, outDirs: readonly string[]): Promise<void>;
}

/**
 * Checks the publish options before anything is written (and, for `kfarm build`, before the
 * build): a target needs --repo-key, and the key must sign (it signs a probe: a missing file,
 * a public key, an expired one, a wrong passphrase are refused here, exit 2).
 */
export async function preparePublish(opts: PublishTargetCliOptions, formats: { apt: boolean; dnf: boolean }): Promise<PreparedPublish> {
  if (opts.apt === undefined && opts.dnf === undefined) {
    const given = opts.repoKey !== undefined ? '--repo-key' : opts.keep !== undefined ? '--keep' : '--base-url';
    throw badOption(`${given} goes with --apt <dir> or --dnf <dir>`);
  }
  if (opts.dnf === undefined && opts.baseUrl !== undefined) throw badOption('--base-url names where clients reach the DNF repository: give --dnf <dir>');
  if (opts.apt !== undefined && !formats.apt) throw badOption('--apt needs APT packages: add bmdeb and/or dkms-deb to --format');
  if (opts.dnf !== undefined && !formats.dnf) throw badOption('--dnf needs RPM packages: add kmod-rpm and/or dkms-rpm to --format');
  if (opts.apt !== undefined && opts.dnf !== undefined && path.resolve(opts.apt) === path.resolve(opts.dnf)) {
    throw badOption('--apt and --dnf name the same directory: give each repository its own', 'e.g. --apt /srv/kfarm/apt --dnf /srv/kfarm/rpm');
  }
  const keyFile = requireKey(opts);
  const key = await openKey(keyFile);
  await key.close();
  return { publish: (ctx, outDirs) => publishTo(ctx, outDirs, opts, keyFile) };
}

async function publishTo(ctx: CliContext, outDirs: readonly string[], opts: PublishTargetCliOptions, keyFile: string): Promise<void> {
  // each publisher checks its directory, the key and its packages again before it writes
  // anything; a second publish of the same out dirs changes nothing (same bytes: left alone)
  if (opts.apt !== undefined) {
    const { publishApt } = await import('../../publish/apt-repo.js');
    const r = await publishApt({ repoDir: opts.apt, outDirs, keyFile, logger: rootLogger, ...(opts.keep !== undefined ? { keep: opts.keep } : {}) });
    for (const a of r.plan.add) ctx.out(`apt  added      ${a.suite.padEnd(9)} ${path.basename(a.pkg.file)}`);
    for (const m of r.plan.metapackages) ctx.out(`apt  meta       ${m.suite.padEnd(9)} ${m.package} ${m.version}`);
    for (const h of r.plan.held) ctx.out(`apt  held       ${path.basename(h.pkg.file)} (published already as ${h.published} with other bytes: that one stays)`);
    for (const sk of r.plan.skipped) ctx.out(`apt  left out   ${sk.suite.padEnd(9)} ${path.basename(sk.pkg.file)} (older than the --keep ${opts.keep ?? ''} newest)`);
    for (const rm of r.plan.remove) ctx.out(`apt  removed    ${rm.suite.padEnd(9)} ${rm.package} ${rm.version} (--keep)`);
    for (const w of r.plan.warnings) ctx.progress(`kfarm: apt: ${w}`);
    for (const o of r.plan.older) ctx.out(`apt  left out   ${o.suite.padEnd(9)} ${path.basename(o.pkg.file)} (the suite holds ${o.published})`);
    const suites = r.plan.suites.map((s) => `${s.codename} (${s.arches.join(', ')})`).join(', ');
    ctx.out(`apt  ${r.repoDir}: ${r.plan.add.length} added, ${r.plan.present.length} already there; suites ${suites}; generation ${r.generation}, signed by ${r.fingerprint}`);
    const suite = r.plan.suites[0]?.codename ?? 'bookworm';
    ctx.out(`apt  clients: deb [signed-by=/usr/share/keyrings/kfarm.gpg] <url of ${r.repoDir}> ${suite} main`);
    ctx.out(`apt  that key file: kfarm publish --export-key kfarm.gpg --repo-key ${keyFile}`);
  }
  if (opts.dnf !== undefined) {
    const { publishDnf } = await import('../../publish/dnf-repo.js');
    const r = await publishDnf({
      repoDir: opts.dnf,
      outDirs,
      key: { keyFile },
      logger: rootLogger,
      ...(opts.keep !== undefined ? { keep: opts.keep } : {}),
      ...(opts.baseUrl !== undefined ? { baseUrl: opts.baseUrl } : {}),
    });
    const repoDir = path.resolve(opts.dnf);
    for (const f of r.added) ctx.out(`dnf  added      ${f}`);
    for (const h of r.plan.held) ctx.out(`dnf  held       ${path.basename(h.source)} (this dkms RPM version is published already; the new kernels come in their kmod packages)`);
    for (const s of r.plan.skipped) ctx.out(`dnf  left out   ${path.basename(s.source)} (older than the --keep ${opts.keep ?? ''} newest)`);
    for (const f of r.removed) ctx.out(`dnf  removed    ${f}`);
    ctx.out(`dnf  ${repoDir}: ${r.added.length} added, ${r.plan.unchanged.length} already there, ${r.plan.remove.length} leave the index (--keep)`);
    ctx.out(`dnf  clients: ${r.repoFile} (copy it to /etc/yum.repos.d/; its key: ${path.join(repoDir, 'RPM-GPG-KEY-kfarm')})`);
  }
}

/** Out dirs whose report.json files list no package for a target are refused before any target is written. */
async function checkOutDirs(outDirs: readonly string[], opts: PublishTargetCliOptions): Promise<void> {
  const formats = new Set<string>();
  for (const outDir of outDirs) for (const p of (await readReport(outDir)).packages ?? []) formats.add(p.format);
  const need = (target: string, wanted: string[]) => {
    if (!wanted.some((f) => formats.has(f))) {
      throw badOption(
        `${outDirs.join(', ')}: report.json lists no ${wanted.join(' or ')} package for ${target}; nothing was published`,
        `Pack it first: kfarm pack <out-dir> --format ${wanted.join(',')}`,
      );
    }
  };
  if (opts.apt !== undefined) need('--apt', ['bmdeb', 'dkms-deb']);
  if (opts.dnf !== undefined) need('--dnf', ['kmod-rpm', 'dkms-rpm']);
}

function requireKey(opts: PublishTargetCliOptions): string {
  if (opts.repoKey === undefined) {
    throw badOption(
      '--repo-key <file> is missing: publishing signs with the repository key',
      'Give an OpenPGP secret key file (gpg --export-secret-keys --armor <id> > repo-key.asc, then --repo-key repo-key.asc), or a key in your gpg-agent: --repo-key gpg:<fingerprint>.',
    );
  }
  // gpg:<fingerprint> is a key in the caller's GNUPGHOME, not a path
  return agentKeyFingerprint(opts.repoKey) === undefined ? path.resolve(opts.repoKey) : opts.repoKey;
}

/** the key, proved able to sign; its refusals name the option */
async function openKey(keyFile: string) {
  try {
    if (agentKeyFingerprint(keyFile) === undefined) await access(keyFile, constants.R_OK);
  } catch (err) {
    throw new KfarmError('BAD_OPTION', `--repo-key ${keyFile}: no such file, or it cannot be read`, { context: { keyFile }, cause: err });
  }
  try {
    return await openRepoKey({ keyFile });
  } catch (err) {
    if (isKfarmError(err) && err.code === 'BAD_OPTION') {
      throw new KfarmError('BAD_OPTION', `--repo-key: ${err.message}`, { context: err.context, ...(err.hint ? { hint: err.hint } : {}), cause: err });
    }
    throw err;
  }
}

async function exportKey(ctx: CliContext, out: string, keyFile: string): Promise<void> {
  const key = await openKey(keyFile);
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'kfarm-export-'));
  try {
    const file = path.join(tmp, 'key.gpg');
    await key.exportPublicKey(file);
    await writeAtomic(path.resolve(out), await readFile(file)); // a reader never sees half a key
  } finally {
    await key.close();
    await rm(tmp, { recursive: true, force: true });
  }
  ctx.out(`public key ${key.fingerprint}: ${out}`);
  ctx.out(`clients: install it as /usr/share/keyrings/kfarm.gpg and name it in sources.list: deb [signed-by=/usr/share/keyrings/kfarm.gpg] <url> <suite> main`);
  ctx.setExitCode(EXIT.ok);
}

async function serve(ctx: CliContext, dir: string, port: number, host: string): Promise<void> {
  const { serveStatic } = await import('../../publish/serve-static.js');
  const server = await serveStatic({ root: dir, port, host, onRequest: (line) => rootLogger.debug(line) });
  ctx.out(`serving ${path.resolve(dir)} at ${server.url}/ (read-only; Ctrl-C stops)`);
  await new Promise<void>((resolve) => {
    if (ctx.signal.aborted) resolve();
    ctx.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await server.close();
  ctx.setExitCode(EXIT.ok); // stopping is how --serve ends
}

function badOption(message: string, hint?: string): KfarmError {
  return new KfarmError('BAD_OPTION', message, hint === undefined ? {} : { hint });
}
