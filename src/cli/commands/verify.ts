import { Command, Option } from 'commander';
import { env } from '../../config/env.js';
import { DockerRuntime } from '../../executor/docker-runtime.js';
import { rootLogger } from '../../logging/logger.js';
import type { BuildReport } from '../../report/report.js';
import { verifyOutDir, type AccelChoice } from '../../verify/verify-out-dir.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { positiveInt } from '../options.js';
import { reportTable } from '../render.js';

export const ACCELS = ['auto', 'kvm', 'tcg'] as const;

/** The options `kfarm verify` and `kfarm build --verify load` share. */
export function addVerifyOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--accel <how>', 'how QEMU runs the guests: auto (KVM when /dev/kvm is usable and a guest boots under it, TCG otherwise), kvm, tcg').choices(ACCELS).default('auto'))
    .option('--cmdline <args>', 'extra kernel command line for the boots, e.g. module.sig_enforce=1', '')
    .option('--boot-timeout <seconds>', 'hard limit of one boot', positiveInt, 300);
}

export interface VerifyCliOptions {
  accel: AccelChoice;
  cmdline: string;
  bootTimeout: number;
}

/** Runs the load check over an out dir and says so on stderr; the report is rewritten through writeReports. */
export function runVerify(ctx: CliContext, outDir: string, opts: VerifyCliOptions & { junit?: string }, kernels?: readonly string[]): Promise<BuildReport> {
  return verifyOutDir(outDir, {
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

/** a load-failed kernel fails the run as a failed build does */
export const loadFailed = (report: BuildReport): boolean => report.kernels.some((k) => k.load?.verdict === 'load-failed');

/** `kfarm verify <out-dir>`: boot each built kernel of an earlier build in QEMU and load its modules. */
export function verifyCommand(ctx: CliContext): Command {
  return addVerifyOptions(
    new Command('verify')
      .description('boot each built kernel of an earlier build (its --out dir) in QEMU and load the modules there')
      .argument('<out-dir>', 'the --out directory of a `kfarm build`')
      .option('-k, --kernels <list>', 'only these kernels (comma-separated uname -r)')
      .option('--junit <file>', 'also write the JUnit XML report here (the out dir always has junit.xml and report.html)'),
  ).action(async (outDir: string, opts: VerifyCliOptions & { kernels?: string; junit?: string }) => {
    const kernels = opts.kernels?.split(',').map((k) => k.trim()).filter((k) => k !== '');
    const report = await runVerify(ctx, outDir, opts, kernels);
    ctx.out(reportTable(report, 'full'));
    ctx.out(`report: ${outDir}/report.json, ${outDir}/report.html, ${outDir}/junit.xml`);
    ctx.setExitCode(loadFailed(report) || report.summary.failed > 0 ? EXIT.kernelsFailed : EXIT.ok);
  });
}
