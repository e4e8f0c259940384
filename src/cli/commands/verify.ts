import { Command, Option } from 'commander';
import type { CliContext } from '../context.js';
import type { VerifyCliOptions } from '../option-types.js';
import { positiveInt } from '../options.js';

export const ACCELS = ['auto', 'kvm', 'tcg'] as const;

/** The options `kfarm verify` and `kfarm build --verify load` share. */
export function addVerifyOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--accel <how>', 'how QEMU runs the guests: auto (KVM when /dev/kvm is usable and a guest boots under it, TCG otherwise), kvm, tcg')
        .choices(ACCELS)
        .default('auto'),
    )
    .option('--cmdline <args>', 'extra kernel command line for the boots, e.g. module.sig_enforce=1', '')
    .option('--boot-timeout <seconds>', 'hard limit of one boot', positiveInt, 300)
    .option('--allow-unverified', 'exit 0 even when no kernel could be verified (every row not-verified); by default that is exit 1', false)
    .option('--secure-boot', "boot amd64 kernels as a Secure Boot fleet does: OVMF with Microsoft's keys, Debian's signed shim, GRUB and kernel, lockdown on")
    .option('--mok-cert <files>', "with --secure-boot: certificates (DER or PEM, comma-separated) enrolled as MOKs; default: the out dir's signing-cert.der");
}

/** `kfarm verify <out-dir>`: boot each built kernel of an earlier build in QEMU and load its modules. */
export function verifyCommand(ctx: CliContext): Command {
  return addVerifyOptions(
    new Command('verify')
      .description('boot each built kernel of an earlier build (its --out dir) in QEMU and load the modules there')
      .argument('<out-dir>', 'the --out directory of a `kfarm build`')
      .option('-k, --kernels <list>', 'only these kernels (comma-separated uname -r)')
      .option('--junit <file>', 'also write the JUnit XML report here (the out dir always has junit.xml and report.html)'),
  ).action(async (outDir: string, opts: VerifyCliOptions & { kernels?: string; junit?: string }) => (await import('../actions/verify.js')).verifyAction(ctx, outDir, opts));
}
