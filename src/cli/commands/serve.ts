import { Command, InvalidArgumentError } from 'commander';
import type { CliContext } from '../context.js';
import { positiveInt } from '../options.js';
import type { OciTargetCliOptions, PublishTargetCliOptions } from '../option-types.js';
import { addOciOptions, addPublishTargetOptions } from './publish.js';

export type ServeCliOptions = {
  listen: { host: string; port: number };
  tlsCert?: string;
  tlsKey?: string;
  concurrency?: number;
} & PublishTargetCliOptions &
  OciTargetCliOptions;

/** `kfarm serve`: the farm as a service (HTTP API on 127.0.0.1 unless told otherwise). */
export function serveCommand(ctx: CliContext): Command {
  // the farm's repositories: every build of a registered module is published there (the module's formats decide which)
  return addOciOptions(
    addPublishTargetOptions(
      new Command('serve').description(
        'run the farm as a service: an HTTP API to register modules, submit builds, follow them and fetch their outputs (tokens: kfarm tokens); publishes registered modules to --apt/--dnf/--oci',
      ),
    ),
  )
    .option('--listen <host:port>', 'where the API listens (a port alone means 127.0.0.1)', listenAddress, { host: '127.0.0.1', port: 8470 })
    .option('--tls-cert <file>', 'serve HTTPS with this certificate chain (PEM); with --tls-key')
    .option('--tls-key <file>', 'the private key (PEM) of --tls-cert')
    .option('--concurrency <n>', 'builds at once in this process when it has no REDIS_URL (default: from cores and memory)', positiveInt)
    .action(async (opts: ServeCliOptions) => (await import('../actions/serve.js')).serveAction(ctx, opts));
}

function listenAddress(value: string): { host: string; port: number } {
  const m = /^(?:(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):)?([0-9]{1,5})$/.exec(value);
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw new InvalidArgumentError(`expected host:port or a port, got "${value}"`);
  return { host: (m[1] ?? '127.0.0.1').replace(/^\[|\]$/g, ''), port };
}
