import { Command } from 'commander';
import type { CliContext } from '../context.js';
import { positiveInt } from '../options.js';

export function workerCommand(ctx: CliContext): Command {
  return new Command('worker')
    .description('run builds from the queue at REDIS_URL until stopped (SIGINT/SIGTERM)')
    .option('-c, --concurrency <n>', 'builds at once (default: the cores + 1, as free memory allows)', positiveInt)
    .option(
      '--verify <lanes>',
      'which load-verification boots to take: kvm, tcg, kvm,tcg or none (default: tcg, and kvm when /dev/kvm is usable here and no boot here showed KVM cannot run a guest)',
    )
    .action(async (opts: { concurrency?: number; verify?: string }) => (await import('../actions/worker.js')).workerAction(ctx, opts));
}
