import { defaultConcurrency } from '../../config/concurrency.js';
import { buildOptions } from '../../config/build-options.js';
import { readDkmsOverrides } from '../../config/dkms-overrides.js';
import { sourceDateEpoch } from '../../packaging/pack-input.js';
import { env } from '../../config/env.js';
import { runBuild } from '../../coordinator/build.js';
import { DockerRuntime } from '../../executor/docker-runtime.js';
import { rootLogger } from '../../logging/logger.js';
import { EXIT } from '../exit-codes.js';
import { buildProgress } from '../build-progress.js';
import { signingOption } from '../signing-option.js';
import { formatDuration, reportTable } from '../render.js';
import type { CliContext } from '../context.js';
import type { BuildCliOptions } from '../option-types.js';
import { loadFailed } from '../load-failed.js';
import { nothingVerified, nothingVerifiedText } from '../nothing-verified.js';
import { usableStateDir } from '../../config/state-dir.js';

/** `kfarm build` (options: commands/build.ts) */
export async function buildAction(ctx: CliContext, sourceDirs: string[], opts: BuildCliOptions): Promise<void> {
  await usableStateDir(env.stateDir);
  // publishing after the build: its options and key are checked before the build, not after it
  // (--oci needs no key: it is checked apart, and without kmm in --format refused here, exit 2)
  const oci = opts.oci !== undefined || [opts.ociCa, opts.ociAuthfile, opts.ociInsecure, opts.ociManifests].some((v) => v !== undefined);
  if (oci) (await import('./publish-oci.js')).checkBuildOci(opts, opts.format);
  const publishing = publishRequested(opts) ? await (await import('./publish.js')).preparePublish(opts, publishFormats(opts.format)) : undefined;
  // --secure-boot without --verify load, or a --mok-cert that is no certificate: refused before any build
  if (opts.secureBoot || opts.mokCert !== undefined) await (await import('./verify.js')).secureBootOptions(opts, opts.verify === 'load');
  const live = ctx.live();
  const progress = buildProgress(live, live.tty);
  let outcome;
  try {
    outcome = await runBuild(
      {
        sourceDirs,
        kernels: opts.kernels,
        outDir: opts.out,
        options: buildOptions({
          timeoutSec: opts.timeout,
          memoryMiB: opts.memory,
          diskMiB: opts.disk,
          cpus: opts.cpus,
          ...(opts.directive.length ? { directives: opts.directive } : {}),
          ...(opts.dkmsOverrides ? { dkmsOverrides: await readDkmsOverrides(opts.dkmsOverrides) } : {}),
          ...sourceDateOption(),
          ...(opts.compress !== 'auto' ? { compress: opts.compress } : {}),
        }),
        concurrency: opts.concurrency ?? defaultConcurrency(),
        // the packers load only when a format beyond the always-written tarballs is asked for
        formats: opts.format === 'dkms-tarball' ? [] : (await import('../../packaging/pack-out-dir.js')).parseFormats(opts.format),
        ...signingOption(opts.signKey, opts.signCert),
        noCache: !opts.cache,
        ...(opts.junit ? { junitPath: opts.junit } : {}),
        ...(opts.cacheSize !== undefined ? { cacheSize: opts.cacheSize } : {}),
      },
      { env, runtime: new DockerRuntime(), logger: rootLogger, signal: ctx.signal, onEvent: progress.onEvent },
    );
  } finally {
    progress.done(); // the status line goes before an error or the table is printed
  }
  if ('nothingNew' in outcome) {
    ctx.out(`no new kernels: the ${outcome.held} held kernel(s) were all covered by earlier builds of ${sourceDirs.join(', ')}; nothing to do`);
    ctx.setExitCode(EXIT.ok);
    return;
  }
  let { report, modules } = outcome;
  const { packages, output } = outcome;
  try {
    if (opts.verify === 'load') {
      // the QEMU boot code loads only when asked for; the load results join the build's staged outputs
      const { runVerify } = await import('./verify.js');
      report = await runVerify(ctx, opts.out, opts, undefined, output.stage);
      modules = modules.map((m) => ({ ...m, kernels: report.kernels.filter((k) => (k.module ?? report.module) === m.module && (k.version ?? report.version) === m.version) }));
    }
    // the command's one commit: --out changes here, all at once, SHA256SUMS last
    await output.commit();
  } finally {
    await output.discard(); // a failed or interrupted verify leaves --out as it was
  }
  // a table per module (its rows read as today's single-module table), then the run's total
  ctx.out(modules.map((m) => reportTable(m, opts.table)).join('\n\n'));
  if (modules.length > 1) {
    const { built, excluded, failed } = report.summary;
    ctx.out(`\n${modules.length} modules: ${built} built, ${excluded} excluded, ${failed} failed in ${formatDuration(report.durationMs)}`);
  }
  for (const p of packages) ctx.out(`${p.format.padEnd(12)} ${opts.out}/${p.path}`);
  ctx.out(`report: ${opts.out}/report.json, ${opts.out}/report.html, ${opts.out}/junit.xml${opts.junit ? ` (and ${opts.junit})` : ''}`);
  // --verify load that verified nothing is no pass (cli/nothing-verified.ts)
  const unverified = opts.verify === 'load' && !opts.allowUnverified && nothingVerified(report.kernels);
  if (unverified) ctx.progress(`kfarm: ${nothingVerifiedText(report.kernels)}`);
  // the out dir as committed, its failed kernels' rows too: the publishers take only built rows' packages
  if ((publishing || opts.oci !== undefined) && report.summary.built > 0) {
    await publishing?.publish(ctx, [opts.out]);
    if (opts.oci !== undefined) await (await import('./publish-oci.js')).publishOciFromCli(ctx, [opts.out], opts);
  } else if (publishing || opts.oci !== undefined) ctx.progress('kfarm: no kernel built: nothing to publish');
  ctx.setExitCode(report.summary.failed > 0 || loadFailed(report) || unverified ? EXIT.kernelsFailed : EXIT.ok);
}

const publishRequested = (o: BuildCliOptions) => [o.apt, o.dnf, o.repoKey, o.keep, o.baseUrl].some((v) => v !== undefined);

/** which publish targets --format feeds */
function publishFormats(format: string): { apt: boolean; dnf: boolean } {
  const f = new Set(format.split(',').map((s) => s.trim()));
  return { apt: f.has('bmdeb') || f.has('dkms-deb'), dnf: f.has('kmod-rpm') || f.has('dkms-rpm') };
}

/** SOURCE_DATE_EPOCH, when set, dates make.log as reproducible builds expect (and is part of the job id) */
function sourceDateOption(): { sourceDateEpoch?: number } {
  return process.env.SOURCE_DATE_EPOCH ? { sourceDateEpoch: sourceDateEpoch(process.env) } : {};
}
