import { Command, InvalidArgumentError } from 'commander';
import type { CliContext } from '../context.js';
import { positiveInt } from '../options.js';
import type { PublishCliOptions } from '../option-types.js';

/** The publish targets, shared by `kfarm publish` and `kfarm build` (which publishes its --out dir after its commit). */
export function addPublishTargetOptions(cmd: Command): Command {
  return cmd
    .option('--apt <dir>', 'publish the bmdeb and dkms-deb packages to this signed APT repository (made when new)')
    .option('--dnf <dir>', 'publish the kmod-rpm and dkms-rpm packages to this signed DNF/YUM repository (made when new)')
    .option(
      '--repo-key <file>',
      'the repository signing key: an OpenPGP secret key file, or gpg:<fingerprint> for a key in your GNUPGHOME and gpg-agent (passphrase: $KFARM_REPO_KEY_PASSPHRASE)',
    )
    .option('--keep <n>', 'keep the newest N versions of each module (per APT suite; in the DNF repository)', positiveInt)
    .option('--base-url <url>', 'DNF: the URL clients reach the --dnf repository at, for its kfarm.repo (default file://<dir>)');
}

/** The OCI target, shared by `kfarm publish` and `kfarm build` (which pushes its out dir's KMM images after its commit). */
export function addOciOptions(cmd: Command): Command {
  return cmd
    .option('--oci <registry>', 'push the KMM images to <registry>/<module>:<version>-<kernel> (credentials: $KFARM_OCI_USER, $KFARM_OCI_PASSWORD)')
    .option('--oci-ca <file>', "the CA certificate (PEM) of the --oci registry's TLS certificate")
    .option('--oci-authfile <file>', 'registry credentials as a containers auth.json / docker config.json, instead of the environment')
    .option('--oci-insecure', 'talk to the --oci registry over plain HTTP or unverified TLS')
    .option('--oci-manifests <dir>', 'where the KMM Module manifests naming the pushed images go (default: the current directory)');
}

/** `kfarm publish`: earlier builds' packages into signed repositories; also --export-key and --serve. */
export function publishCommand(ctx: CliContext): Command {
  return addOciOptions(
    addPublishTargetOptions(
      new Command('publish')
        .description('publish earlier builds (their --out dirs) to signed APT and DNF repositories; --export-key, --serve')
        .argument('[dir...]', 'out dirs of `kfarm build` to publish (with --serve: the one directory to serve)'),
    ),
  )
    .option('--export-key <file>', "only write the public half of --repo-key here (binary: what a client's Signed-By names)")
    .option('--serve <port>', 'only serve <dir> as static files, read-only, until Ctrl-C (0: a free port)', port)
    .option('--host <address>', 'with --serve: the address to listen on', '127.0.0.1')
    .action(async (dirs: string[], opts: PublishCliOptions) => (await import('../actions/publish.js')).publishAction(ctx, dirs, opts));
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`expected a port number (0 to 65535), got "${value}"`);
  return n;
}
