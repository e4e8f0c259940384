import path from 'node:path';
import { KfarmError } from '../../errors/kfarm-error.js';
import { rootLogger } from '../../logging/logger.js';
import type { OciCredentials } from '../../publish/oci-skopeo.js';
import type { CliContext } from '../context.js';
import type { OciTargetCliOptions } from '../option-types.js';

/** `kfarm publish --oci <registry>` and `kfarm build --oci` (docs/publishing.md, "OCI"). */
export type OciCliOptions = OciTargetCliOptions;

/** The OCI options given without --oci are refused: they would silently do nothing. */
export function checkOciOptions(opts: OciCliOptions): void {
  if (opts.oci !== undefined) return;
  const stray =
    opts.ociCa !== undefined
      ? '--oci-ca'
      : opts.ociAuthfile !== undefined
        ? '--oci-authfile'
        : opts.ociInsecure
          ? '--oci-insecure'
          : opts.ociManifests !== undefined
            ? '--oci-manifests'
            : undefined;
  if (stray) throw new KfarmError('BAD_OPTION', `${stray} goes with --oci <registry>`);
}

/**
 * `kfarm build --oci`: checked before the build. The registry gets the KMM images, so a build
 * whose --format makes none would build for nothing and then fail: refused first (exit 2).
 */
export function checkBuildOci(opts: OciCliOptions, format: string): void {
  checkOciOptions(opts);
  if (opts.oci === undefined) return;
  const formats = new Set(format.split(',').map((s) => s.trim()));
  if (!formats.has('kmm')) {
    throw new KfarmError('BAD_OPTION', '--oci needs KMM images: add kmm to --format', { hint: `e.g. --format ${[...formats, 'kmm'].join(',')} --oci ${opts.oci}` });
  }
}

/**
 * Pushes the out dirs' KMM images to --oci and writes the Module manifests (by digest) into
 * --oci-manifests (default: the current directory). Credentials: --oci-authfile (a
 * containers-auth.json / ~/.docker/config.json), or KFARM_OCI_USER and KFARM_OCI_PASSWORD;
 * never an option's value, so they appear in no process list or shell history.
 */
export async function publishOciFromCli(ctx: CliContext, outDirs: readonly string[], opts: OciCliOptions): Promise<void> {
  const { publishOci } = await import('../../publish/oci-publish.js');
  const { ociCredentialsFromEnv } = await import('../../publish/oci-skopeo.js');
  const credentials: OciCredentials = opts.ociAuthfile !== undefined ? { authFile: path.resolve(opts.ociAuthfile) } : ociCredentialsFromEnv();
  const r = await publishOci({
    outDirs,
    registry: opts.oci!,
    credentials,
    tls: { ...(opts.ociCa !== undefined ? { caCert: path.resolve(opts.ociCa) } : {}), ...(opts.ociInsecure ? { insecure: true } : {}) },
    manifestDir: path.resolve(opts.ociManifests ?? '.'),
    logger: rootLogger,
  });
  for (const i of r.images) ctx.out(`oci  ${i.action === 'pushed' ? 'pushed    ' : 'already there'} ${i.reference} (${i.pinned.slice(i.pinned.indexOf('@') + 1)})`);
  for (const m of r.manifests) ctx.out(`oci  Module manifest (images by digest): ${m}`);
}
