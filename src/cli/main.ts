import { Command, CommanderError } from 'commander';
import { isKfarmError, describeError } from '../errors/kfarm-error.js';
import { fromSystemError } from '../errors/system-error.js';
import { toolVersion } from '../version.js';
import { buildCommand } from './commands/build.js';
import { cacheCommand } from './commands/cache.js';
import { imagesCommand, kernelsCommand } from './commands/images.js';
import { ldtarballCommand } from './commands/ldtarball.js';
import { packCommand } from './commands/pack.js';
import { publishCommand } from './commands/publish.js';
import { serveCommand } from './commands/serve.js';
import { signCommand } from './commands/sign.js';
import { tokensCommand } from './commands/tokens.js';
import { verifyCommand } from './commands/verify.js';
import { workerCommand } from './commands/worker.js';
import type { CliContext } from './context.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { liveStatus } from './live-status.js';
import { errorText } from './render.js';

/**
 * The CLI is the one error boundary: commands throw KfarmError, this turns them into a
 * message, a hint and an exit status. Nothing below here prints or exits.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const controller = new AbortController();
  let exitCode: number | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(EXIT.interrupted); // second Ctrl-C: leave now
    process.stderr.write(`\nkfarm: ${signal}: stopping (a build or boot removes its containers first)...\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const ctx: CliContext = {
    out: (text) => process.stdout.write(`${text}\n`),
    progress: (line) => process.stderr.write(`${line}\n`),
    live: () => liveStatus(process.stderr),
    signal: controller.signal,
    setExitCode: (code) => {
      exitCode = code;
    },
  };
  // Every process registers every command: commands/*.ts hold only options and help, and each
  // action imports its code (actions/*.ts) when it runs (test/e2e/lazy-commands.test.ts).
  const program = new Command('kfarm')
    .description('a containerized build farm for out-of-tree Linux kernel modules (DKMS)')
    .version(toolVersion)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .addCommand(buildCommand(ctx))
    .addCommand(packCommand(ctx))
    .addCommand(signCommand(ctx))
    .addCommand(publishCommand(ctx))
    .addCommand(ldtarballCommand(ctx))
    .addCommand(workerCommand(ctx))
    .addCommand(imagesCommand(ctx))
    .addCommand(kernelsCommand(ctx))
    .addCommand(verifyCommand(ctx))
    .addCommand(serveCommand(ctx))
    .addCommand(tokensCommand(ctx))
    .addCommand(cacheCommand(ctx));
  for (const cmd of program.commands) cmd.exitOverride();

  try {
    await program.parseAsync(argv, { from: 'user' });
    // A command that stops on a signal by design (the worker) sets its own status.
    return exitCode ?? (controller.signal.aborted ? EXIT.interrupted : EXIT.ok);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.badInput;
    const known = isKfarmError(err) ? err : fromSystemError(err);
    if (known) {
      process.stderr.write(errorText(known.message, known.hint));
      (await import('../logging/logger.js')).rootLogger.debug({ err, code: known.code, context: known.context }, 'command failed');
      return exitCodeFor(known.code);
    }
    process.stderr.write(`kfarm: unexpected error: ${describeError(err)}\n${err instanceof Error ? (err.stack ?? '') : ''}\n`);
    return EXIT.internal;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * Sets the exit status and lets Node exit once nothing is pending; a CLI must end when its
 * command has. Every connection and timer of kfarm's is closed by then, but a library may keep
 * one a little longer (redis-parser shrinks its buffer pool on a 50 ms interval for a second or
 * so after a large reply, such as a module or a kernel .config fetched from Redis): after a
 * short grace the process exits anyway, and what was still open is logged at debug level so
 * a real leak can be found. Short, since every build call waits for it (250 ms was a tenth of a
 * one-kernel build); output to a pipe, file or terminal is written synchronously on Linux.
 */
export function exitWhenDrained(code: number, graceMs = 25): void {
  process.exitCode = code;
  setTimeout(() => {
    const open = process.getActiveResourcesInfo();
    void import('../logging/logger.js')
      .then(({ rootLogger }) => rootLogger.debug({ open }, `still running ${graceMs} ms after the command ended: exiting`))
      .finally(() => process.exit(code));
  }, graceMs).unref();
}
