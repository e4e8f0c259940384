import { Command, InvalidArgumentError } from 'commander';
import type { CliContext } from '../context.js';
import { positiveInt } from '../options.js';
import type { ServeCliOptions } from '../option-types.js';
import { addOciOptions, addPublishTargetOptions } from './publish.js';

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
    .option('--watch', 'watch the Debian archive: sync each new kernel and build every registered module for it (the first look is the baseline)')
    .option('--watch-every <duration>', 'with --watch: how often to look (90s, 30m, 1h)', duration, 3_600_000)
    .option('--watch-cron <pattern>', 'with --watch: a cron pattern instead of an interval ("0 * * * *")')
    .option('--releases <list>', 'with --watch: the releases to follow (debian-11,debian-12,debian-13; default all)')
    .option('--arch <list>', 'with --watch: the arches to follow (amd64,arm64)', 'amd64')
    .option('--flavours <list>', 'with --watch: the flavours to follow (default every one)')
    .option('--mirror <url>', 'with --watch: the Debian mirror to read (default deb.debian.org)')
    .option('--security-mirror <url>', 'with --watch: the security mirror to read')
    .option('--keyring <file>', "with --watch: the keyring the mirror's InRelease is checked against")
    .option(
      '--prune-gone-after <days>',
      'with --watch: remove the image of a kernel the archive stopped offering this long ago (30, 30d, 12h; 0: at the next run); its results and packages stay (default: never)',
      goneAfter,
    )
    .option(
      '--sign-key <file|uri>',
      'sign the builds of modules registered with sign=true with this key, as kfarm build --sign-key (KBUILD_SIGN_PIN; pkcs11:<URI> with KFARM_PKCS11_PIN or _FILE)',
    )
    .option('--sign-cert <file>', 'the X.509 certificate (PEM or DER) of --sign-key')
    .option('--webhook <url>', 'POST signed events here: a kernel built, a new failure, a regression, a farm fault')
    .option('--webhook-secret-file <file>', 'the HMAC-SHA256 secret of --webhook (a file: never a command-line value)')
    .action(async (opts: ServeCliOptions) => (await import('../actions/serve.js')).serveAction(ctx, opts));
}

function listenAddress(value: string): { host: string; port: number } {
  const m = /^(?:(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):)?([0-9]{1,5})$/.exec(value);
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw new InvalidArgumentError(`expected host:port or a port, got "${value}"`);
  return { host: (m[1] ?? '127.0.0.1').replace(/^\[|\]$/g, ''), port };
}

/** 30 (days), 30d, 12h, 90m, 0: how long a kernel is gone from the archive before the watch prunes it */
function goneAfter(value: string): number {
  const m = /^([0-9]{1,6})(d|h|m|s)?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`expected days (30) or a duration (30d, 12h, 90m, 0), got "${value}"`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'd') as 's' | 'm' | 'h' | 'd'];
}

/** 90s, 30m, 1h, 2d: a watch interval of at least ten seconds (the archive changes hourly at most; tests look more often) */
function duration(value: string): number {
  const m = /^([0-9]+)(s|m|h|d)$/.exec(value.trim());
  const ms = m ? Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'] : NaN;
  if (!Number.isFinite(ms) || ms < 10_000) throw new InvalidArgumentError(`expected a duration of at least 10 s (90s, 30m, 1h), got "${value}"`);
  return ms;
}
