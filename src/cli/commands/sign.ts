import { Command } from 'commander';
import type { CliContext } from '../context.js';

/** `kfarm sign <out-dir> --sign-key ... --sign-cert ...`: sign an earlier build's modules without rebuilding. */
export function signCommand(ctx: CliContext): Command {
  return new Command('sign')
    .description('sign the modules of an earlier build (its --out dir) without rebuilding: tarballs, packages, reports and SHA256SUMS rewritten')
    .argument('<out-dir>', 'the --out directory of a `kfarm build` (report.json and its DKMS tarballs)')
    .requiredOption(
      '--sign-key <file|uri>',
      "the signing key (PEM; KBUILD_SIGN_PIN for an encrypted one), used with each kernel's own sign-file; or a key in a token, pkcs11:<RFC 7512 URI> (PIN in KFARM_PKCS11_PIN or KFARM_PKCS11_PIN_FILE, library in KFARM_PKCS11_MODULE)",
    )
    .requiredOption('--sign-cert <file>', 'the X.509 certificate (PEM or DER) of --sign-key')
    .action(async (outDir: string, opts: { signKey: string; signCert: string }) => (await import('../actions/sign.js')).signAction(ctx, outDir, opts));
}
