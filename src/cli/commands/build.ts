import { Command, Option } from 'commander';
import type { CliContext } from '../context.js';
import { PACKABLE_FORMAT_NAMES } from '../help-values.js';
import { positiveInt } from '../options.js';
import type { BuildCliOptions } from '../option-types.js';
import { AUTO_FULL_MAX, TABLE_VIEWS } from '../render.js';
import { addOciOptions, addPublishTargetOptions } from './publish.js';
import { addVerifyOptions } from './verify.js';

export function buildCommand(ctx: CliContext): Command {
  // --apt/--dnf/--repo-key/--keep/--base-url and --oci: publish the out dir after its commit
  return addOciOptions(addPublishTargetOptions(addVerifyOptions(new Command('build'))))
    .addOption(new Option('--verify <what>', 'after the build, boot each built kernel in QEMU and load the modules (load)').choices(['load']))
    .description('build DKMS modules for many kernels and pack the results')
    .argument('<source-dir...>', 'module sources, each with a dkms.conf (several: one run, one report)')
    .option('-k, --kernels <selector>', 'kernels to build for: all, a release, globs like 6.1.*, image:glob, arch:arm64, release:debian-12, new, !term (default: all)')
    .option('-o, --out <dir>', 'output directory', 'dist')
    .option('--junit <file>', 'also write the JUnit XML report here (the output directory always has junit.xml and report.html)')
    .option('-f, --format <list>', `formats, comma-separated: dkms-tarball (always written) and ${PACKABLE_FORMAT_NAMES.join(', ') || 'more to come'}`, 'dkms-tarball')
    .option('-c, --concurrency <n>', 'builds at once in this process (local mode; default: the cores + 1, as free memory allows)', positiveInt)
    .option('-t, --timeout <seconds>', 'wall-clock limit of one kernel build', positiveInt, 1800)
    .option('--memory <MiB>', 'memory limit of one build container (its in-memory mounts count against it)', positiveInt, 4096)
    .option('--disk <MiB>', "size of one build's in-memory build tree (/tmp and /var/tmp get a quarter each)", positiveInt, 2048)
    .option('--cpus <n>', 'CPUs one build container may use', positiveInt, 2)
    .option('--no-cache', 'rebuild even when an identical job already finished')
    .option('--cache-size <size>', 'bound of the result store on disk (4G, 500M); least recently used results go first (default $KFARM_CACHE_SIZE or 4G)')
    .option('--dkms-overrides <dir>', 'a directory of /etc/dkms-style <module>[-<version>[-<kernel>[-<arch>]]].conf files, sourced after dkms.conf as dkms does')
    .addOption(
      new Option('--compress <how>', "compress built modules: auto (as the target kernel's own modules: .ko.xz on Debian's 6.12 and later), none, xz, zstd")
        .choices(['auto', 'none', 'xz', 'zstd'])
        .default('auto'),
    )
    .option(
      '--sign-key <file|uri>',
      "sign every built module with this key (PEM; KBUILD_SIGN_PIN for an encrypted one), with each kernel's own sign-file; or a key in a token, pkcs11:<RFC 7512 URI> (PIN in KFARM_PKCS11_PIN or KFARM_PKCS11_PIN_FILE, library in KFARM_PKCS11_MODULE), signed on this host through OpenSSL's pkcs11 engine",
    )
    .option('--sign-cert <file>', 'the X.509 certificate (PEM or DER) of --sign-key')
    .option(
      '--directive <NAME=value>',
      'as `dkms --directive`: set a dkms.conf directive after dkms.conf is read, on every kernel (repeatable)',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .addOption(
      new Option('--table <view>', `final table: summary (a line per release/arch, a row per failed kernel), full (a row per kernel), auto (full up to ${AUTO_FULL_MAX} kernels)`)
        .choices(TABLE_VIEWS)
        .default('auto'),
    )
    .option('--farm <url>', 'build on a kfarm serve farm over its API instead of here: no Docker, images or Redis needed (token: $KFARM_FARM_TOKEN or --farm-token-file)')
    .option('--farm-token-file <file>', "with --farm: a file holding the farm's API token (submit scope)")
    .action(async (sourceDirs: string[], opts: BuildCliOptions) =>
      opts.farm ? (await import('../actions/build-farm.js')).buildOnFarm(ctx, sourceDirs, opts) : (await import('../actions/build.js')).buildAction(ctx, sourceDirs, opts),
    );
}
