import { env } from '../../config/env.js';
import { DockerRuntime } from '../../executor/docker-runtime.js';
import { rootLogger } from '../../logging/logger.js';
import type { BuildReport } from '../../report/report.js';
import type { OutDirStage } from '../../report/out-dir.js';
import { verifyOutDir } from '../../coordinator/verify-out-dir.js';
import type { VerifyCliOptions } from '../option-types.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { loadFailed } from '../load-failed.js';
import { nothingVerified, nothingVerifiedText } from '../nothing-verified.js';
import { reportTable } from '../render.js';
import { usableStateDir } from '../../config/state-dir.js';
import { KfarmError } from '../../errors/kfarm-error.js';
import { readMokCerts } from '../../verify/secure-boot/mok-certs.js';

/** --secure-boot's certificates, read and checked before any build or boot: a bad file fails fast (exit 2) */
export async function secureBootOptions(opts: VerifyCliOptions, verifying: boolean): Promise<{ secureBoot?: boolean; mokCerts?: string[] }> {
  if (opts.mokCert !== undefined && !opts.secureBoot) throw new KfarmError('BAD_OPTION', '--mok-cert goes with --secure-boot');
  if (!opts.secureBoot) return {};
  if (!verifying)
    throw new KfarmError('BAD_OPTION', '--secure-boot goes with --verify load', { hint: 'kfarm build <src> --verify load --secure-boot, or kfarm verify <out-dir> --secure-boot' });
  if (opts.mokCert === undefined) return { secureBoot: true };
  const files = opts.mokCert
    .split(',')
    .map((f) => f.trim())
    .filter((f) => f !== '');
  return { secureBoot: true, mokCerts: (await readMokCerts(files)).map((c) => c.pem) };
}

/**
 * Runs the load check over an out dir and says so on stderr. The report is rewritten through
 * the out dir's writer: committed here, or, given `stage` (`kfarm build --verify load`), staged
 * there for the caller's one commit.
 */
export async function runVerify(
  ctx: CliContext,
  outDir: string,
  opts: VerifyCliOptions & { junit?: string },
  kernels?: readonly string[],
  stage?: OutDirStage,
): Promise<BuildReport> {
  return verifyOutDir(outDir, {
    ...(await secureBootOptions(opts, true)),
    ...(stage ? { stage } : {}),
    env,
    accel: opts.accel,
    cmdline: opts.cmdline,
    timeoutSec: opts.bootTimeout,
    ...(kernels ? { kernels } : {}),
    ...(opts.junit ? { junit: opts.junit } : {}),
    stateDir: env.stateDir,
    runtime: new DockerRuntime(),
    logger: rootLogger,
    say: ctx.progress,
    signal: ctx.signal,
  });
}

/** `kfarm verify <out-dir>` (options: commands/verify.ts) */
export async function verifyAction(ctx: CliContext, outDir: string, opts: VerifyCliOptions & { kernels?: string; junit?: string }): Promise<void> {
  await usableStateDir(env.stateDir);
  const kernels = opts.kernels
    ?.split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '');
  const report = await runVerify(ctx, outDir, opts, kernels);
  ctx.out(reportTable(report, 'full'));
  ctx.out(`report: ${outDir}/report.json, ${outDir}/report.html, ${outDir}/junit.xml`);
  const checked = report.kernels.filter((k) => !kernels || kernels.includes(k.kernel));
  const unverified = !opts.allowUnverified && nothingVerified(checked);
  if (unverified) ctx.progress(`kfarm: ${nothingVerifiedText(checked)}`);
  ctx.setExitCode(loadFailed(report) || report.summary.failed > 0 || unverified ? EXIT.kernelsFailed : EXIT.ok);
}
