import { Command, Option } from 'commander';
import { buildOptions } from '../../config/build-options.js';
import { KfarmError } from '../../errors/kfarm-error.js';
import { readDkmsOverrides } from '../../config/dkms-overrides.js';
import { sourceDateEpoch } from '../../packaging/pack-input.js';
import { parseFormats } from '../../packaging/pack-out-dir.js';
import { PACKABLE_FORMATS } from '../../packaging/packers.js';
import { env } from '../../config/env.js';
import { runBuild } from '../../coordinator/build.js';
import { DockerRuntime } from '../../executor/docker-runtime.js';
import { rootLogger } from '../../logging/logger.js';
import { EXIT } from '../exit-codes.js';
import { positiveInt } from '../options.js';
import { buildProgress } from '../build-progress.js';
import { AUTO_FULL_MAX, formatDuration, reportTable, TABLE_VIEWS, type TableView } from '../render.js';
import type { CliContext } from '../context.js';
import { addVerifyOptions, loadFailed, runVerify, type VerifyCliOptions } from './verify.js';

export function buildCommand(ctx: CliContext): Command {
  return addVerifyOptions(new Command('build'))
    .addOption(new Option('--verify <what>', 'after the build, boot each built kernel in QEMU and load the modules (load)').choices(['load']))
    .description('build DKMS modules for many kernels and pack the results')
    .argument('<source-dir...>', 'module sources, each with a dkms.conf (several: one run, one report)')
    .option('-k, --kernels <selector>', 'kernels to build for: all, a release, globs like 6.1.*, image:glob, arch:arm64, release:debian-12, new, !term (default: all)')
    .option('-o, --out <dir>', 'output directory', 'dist')
    .option('--junit <file>', 'also write the JUnit XML report here (the output directory always has junit.xml and report.html)')
    .option('-f, --format <list>', `formats, comma-separated: dkms-tarball (always written) and ${PACKABLE_FORMATS().join(', ') || 'more to come'}`, 'dkms-tarball')
    .option('-c, --concurrency <n>', 'builds at once in this process (local mode)', positiveInt, 2)
    .option('-t, --timeout <seconds>', 'wall-clock limit of one kernel build', positiveInt, 1800)
    .option('--memory <MiB>', 'memory limit of one build container (its in-memory mounts count against it)', positiveInt, 4096)
    .option('--disk <MiB>', 'size of one build\'s in-memory build tree (/tmp and /var/tmp get a quarter each)', positiveInt, 2048)
    .option('--cpus <n>', 'CPUs one build container may use', positiveInt, 2)
    .option('--no-cache', 'rebuild even when an identical job already finished')
    .option('--cache-size <size>', 'bound of the result store on disk (4G, 500M); least recently used results go first (default $KFARM_CACHE_SIZE or 4G)')
    .option('--dkms-overrides <dir>', 'a directory of /etc/dkms-style <module>[-<version>[-<kernel>[-<arch>]]].conf files, sourced after dkms.conf as dkms does')
    .addOption(new Option('--compress <how>', 'compress built modules: auto (as the target kernel\'s own modules: .ko.xz on Debian\'s 6.12 and later), none, xz, zstd').choices(['auto', 'none', 'xz', 'zstd']).default('auto'))
    .option('--sign-key <file>', 'sign every built module with this key (PEM; KBUILD_SIGN_PIN for an encrypted one), with each kernel\'s own sign-file')
    .option('--sign-cert <file>', 'the X.509 certificate (PEM or DER) of --sign-key')
    .option('--directive <NAME=value>', 'as `dkms --directive`: set a dkms.conf directive after dkms.conf is read, on every kernel (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
    .addOption(
      new Option('--table <view>', `final table: summary (a line per release/arch, a row per failed kernel), full (a row per kernel), auto (full up to ${AUTO_FULL_MAX} kernels)`)
        .choices(TABLE_VIEWS)
        .default('auto'),
    )
    .action(async (sourceDirs: string[], opts: { kernels?: string; out: string; concurrency: number; timeout: number; memory: number; disk: number; cpus: number; cache: boolean; table: TableView; directive: string[]; dkmsOverrides?: string; format: string; compress: 'auto' | 'none' | 'xz' | 'zstd'; signKey?: string; signCert?: string; junit?: string; cacheSize?: string; verify?: 'load' } & VerifyCliOptions) => {
      const live = ctx.live();
      const progress = buildProgress(live, live.tty);
      let outcome;
      try {
        outcome = await runBuild(
          {
            sourceDirs,
            kernels: opts.kernels,
            outDir: opts.out,
            options: buildOptions({ timeoutSec: opts.timeout, memoryMiB: opts.memory, diskMiB: opts.disk, cpus: opts.cpus, ...(opts.directive.length ? { directives: opts.directive } : {}), ...(opts.dkmsOverrides ? { dkmsOverrides: await readDkmsOverrides(opts.dkmsOverrides) } : {}), ...sourceDateOption(), ...(opts.compress !== 'auto' ? { compress: opts.compress } : {}) }),
            concurrency: opts.concurrency,
            formats: parseFormats(opts.format),
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
      const { packages } = outcome;
      if (opts.verify === 'load') {
        report = await runVerify(ctx, opts.out, opts);
        modules = modules.map((m) => ({ ...m, kernels: report.kernels.filter((k) => (k.module ?? report.module) === m.module && (k.version ?? report.version) === m.version) }));
      }
      // a table per module (its rows read as today's single-module table), then the run's total
      ctx.out(modules.map((m) => reportTable(m, opts.table)).join('\n\n'));
      if (modules.length > 1) {
        const { built, excluded, failed } = report.summary;
        ctx.out(`\n${modules.length} modules: ${built} built, ${excluded} excluded, ${failed} failed in ${formatDuration(report.durationMs)}`);
      }
      for (const p of packages) ctx.out(`${p.format.padEnd(12)} ${opts.out}/${p.path}`);
      ctx.out(`report: ${opts.out}/report.json, ${opts.out}/report.html, ${opts.out}/junit.xml${opts.junit ? ` (and ${opts.junit})` : ''}`);
      ctx.setExitCode(report.summary.failed > 0 || loadFailed(report) ? EXIT.kernelsFailed : EXIT.ok);
    });
}

/** SOURCE_DATE_EPOCH, when set, dates make.log as reproducible builds expect (and is part of the job id) */
function sourceDateOption(): { sourceDateEpoch?: number } {
  return process.env.SOURCE_DATE_EPOCH ? { sourceDateEpoch: sourceDateEpoch(process.env) } : {};
}

/** --sign-key and --sign-cert go together; the key's passphrase comes as kbuild takes it */
function signingOption(keyPath: string | undefined, certPath: string | undefined): { signing?: { keyPath: string; certPath: string; pin?: string } } {
  if (keyPath === undefined && certPath === undefined) return {};
  if (keyPath === undefined || certPath === undefined) {
    throw new KfarmError('BAD_OPTION', `${keyPath === undefined ? '--sign-cert' : '--sign-key'} given without ${keyPath === undefined ? '--sign-key' : '--sign-cert'}`, {
      hint: 'Signing needs both: --sign-key key.pem --sign-cert cert.pem (the certificate of that key).',
    });
  }
  const pin = process.env.KBUILD_SIGN_PIN;
  return { signing: { keyPath, certPath, ...(pin ? { pin } : {}) } };
}
