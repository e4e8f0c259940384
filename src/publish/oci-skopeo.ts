import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KfarmError } from '../errors/kfarm-error.js';
import { run } from '../process/run.js';

/**
 * The registry, through skopeo (Debian's `skopeo`, containers/image). Why skopeo rather than
 * the Docker engine (dockerode push): it copies the OCI archive the packer wrote straight to the
 * registry, blob for blob, and `--preserve-digests` makes it fail rather than rewrite the
 * manifest, so the digest kfarm computed from the archive is the digest the registry serves.
 * A push through Docker would need a `docker load` first (the engine's store, a tag in it, and
 * its daemon-wide registry credentials and CA configuration, /etc/docker/certs.d, shared by
 * everything on the host), and the engine may convert the manifest on the way.
 *
 * Credentials never reach a command line or a log: they are written to an auth file
 * (containers-auth.json(5)) in a private temporary directory (0700, the file 0600), named by
 * `--authfile`, removed by close(). The CA certificate goes to the same directory as
 * `certs/ca.crt` for `--cert-dir` (skopeo takes a directory).
 */
export type OciCredentials = { user: string; password: string } | { authFile: string } | undefined;

export interface OciTls {
  /** a PEM CA certificate the registry's certificate chains to (besides the system's CAs) */
  caCert?: string;
  /** plain HTTP or unverified TLS: only for a registry on a trusted network */
  insecure?: boolean;
}

export const OCI_USER_ENV = 'KFARM_OCI_USER';
export const OCI_PASSWORD_ENV = 'KFARM_OCI_PASSWORD';

/** Credentials from KFARM_OCI_USER / KFARM_OCI_PASSWORD, or none. */
export function ociCredentialsFromEnv(env: NodeJS.ProcessEnv = process.env): OciCredentials {
  const user = env[OCI_USER_ENV];
  const password = env[OCI_PASSWORD_ENV];
  if (user === undefined && password === undefined) return undefined;
  if (!user || password === undefined) {
    throw new KfarmError('BAD_OPTION', `${OCI_USER_ENV} and ${OCI_PASSWORD_ENV} go together: one is set without the other`);
  }
  return { user, password };
}

export interface Skopeo {
  /** the digest of the manifest the tag names now, undefined when there is no such tag */
  digestOf(reference: string): Promise<string | undefined>;
  /** pushes the archive's one image; returns the digest the registry stored */
  push(archive: string, reference: string): Promise<string>;
  close(): Promise<void>;
}

export async function openSkopeo(options: { registryHost: string; credentials: OciCredentials; tls: OciTls }): Promise<Skopeo> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kfarm-oci-'));
  await chmod(dir, 0o700);
  try {
    const authFile = path.join(dir, 'auth.json');
    const auths: Record<string, { auth: string }> = {};
    const creds = options.credentials;
    if (creds && 'user' in creds) auths[options.registryHost] = { auth: Buffer.from(`${creds.user}:${creds.password}`).toString('base64') };
    // written even when empty: skopeo then never falls back to ~/.docker or $XDG_RUNTIME_DIR's auth file
    if (creds && 'authFile' in creds) await copyFile(creds.authFile, authFile);
    else await writeFile(authFile, JSON.stringify({ auths }), { mode: 0o600 });
    await chmod(authFile, 0o600);
    const tlsArgs = (prefix: '' | 'dest-'): string[] => {
      if (options.tls.insecure) return [`--${prefix}tls-verify=false`];
      return options.tls.caCert ? [`--${prefix}cert-dir`, path.join(dir, 'certs')] : [];
    };
    if (options.tls.caCert) {
      await mkdir(path.join(dir, 'certs'));
      await copyFile(options.tls.caCert, path.join(dir, 'certs', 'ca.crt'));
    }
    const skopeo = (args: string[]) => run('skopeo', args, { allowFailure: true, timeoutMs: 15 * 60_000 });
    return {
      async digestOf(reference) {
        // skopeo's Digest is the digest of the manifest the tag names, computed from its raw
        // bytes (hashing `--raw` here would need them byte-exact, and run() strips a final newline)
        const out = await skopeo(['inspect', '--no-tags', '--format', '{{.Digest}}', '--retry-times', '2', '--authfile', authFile, ...tlsArgs(''), `docker://${reference}`]);
        if (out.exitCode === 0) {
          const digest = out.stdout.trim();
          if (!/^sha256:[0-9a-f]{64}$/.test(digest))
            throw new KfarmError('COMMAND_FAILED', `skopeo inspect gave no digest for ${reference}: ${digest.slice(0, 200)}`, { context: { reference } });
          return digest;
        }
        const failure = classifySkopeoError(out.stderr);
        if (failure === 'not-found') return undefined;
        throw registryError(failure, options.registryHost, reference, out.stderr);
      },
      async push(archive, reference) {
        const digestFile = path.join(dir, 'digest');
        const out = await skopeo([
          'copy',
          '--preserve-digests',
          '--retry-times',
          '2',
          '--digestfile',
          digestFile,
          '--dest-authfile',
          authFile,
          ...tlsArgs('dest-'),
          `oci-archive:${archive}`,
          `docker://${reference}`,
        ]);
        if (out.exitCode !== 0) throw registryError(classifySkopeoError(out.stderr), options.registryHost, reference, out.stderr);
        return (await readFile(digestFile, 'utf8')).trim();
      },
      close: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

export type SkopeoFailure = 'not-found' | 'unauthorized' | 'unreachable' | 'tls' | 'other';

/** What skopeo's last words (containers/image and the registry's error codes) say went wrong. */
export function classifySkopeoError(stderr: string): SkopeoFailure {
  if (/unauthorized|authentication required|denied|invalid username\/password|401 Unauthorized/i.test(stderr)) return 'unauthorized';
  if (/manifest unknown|name unknown|not found|404/i.test(stderr)) return 'not-found';
  if (/x509:|certificate|tls:|http: server gave HTTP response to HTTPS client/i.test(stderr)) return 'tls';
  if (/connection refused|no such host|i\/o timeout|network is unreachable|no route to host|dial tcp|EOF/i.test(stderr)) return 'unreachable';
  return 'other';
}

function registryError(failure: SkopeoFailure, host: string, reference: string, stderr: string): KfarmError {
  const detail = lastLine(stderr);
  const context = { registry: host, reference };
  switch (failure) {
    case 'unauthorized':
      return new KfarmError('BAD_OPTION', `the registry ${host} refused the credentials (${reference}): nothing more was pushed`, {
        context,
        hint: `Check ${OCI_USER_ENV} / ${OCI_PASSWORD_ENV} (or the auth file) and that the account may push to this repository.`,
      });
    case 'tls':
      return new KfarmError('COMMAND_FAILED', `the registry ${host}'s TLS certificate was not accepted: ${detail}`, {
        context,
        hint: "Give the CA that signed the registry's certificate (caCert / --oci-ca).",
      });
    case 'unreachable':
      return new KfarmError('COMMAND_FAILED', `the registry ${host} is unreachable: ${detail}`, { context, hint: 'Is the registry running, and is its host and port right?' });
    default:
      return new KfarmError('COMMAND_FAILED', `skopeo failed on ${reference}: ${detail}`, { context });
  }
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  // skopeo's fatal line: time="…" level=fatal msg="…"
  const line = lines[lines.length - 1] ?? '';
  return /msg="(.*)"\s*$/.exec(line)?.[1]?.replace(/\\"/g, '"') ?? line;
}
