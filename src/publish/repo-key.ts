import { access, chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { gpgHomePrefix, removeStaleGpgHomes } from './stale-gpg-homes.js';
import os from 'node:os';
import path from 'node:path';
import { KfarmError } from '../errors/kfarm-error.js';
import { run, type RunResult } from '../process/run.js';

/**
 * The repository signing key, in one of two forms:
 * - an OpenPGP secret key file, imported into a fresh GNUPGHOME of its own (mode 0700, removed
 *   by close()), used on the host by gpg;
 * - `gpg:<fingerprint>`: a key in the caller's own GNUPGHOME (`$GNUPGHOME`, else ~/.gnupg),
 *   signed with through the caller's own gpg-agent. Nothing is imported or copied: the secret
 *   key stays where it is, and close() leaves that home and its agent alone.
 * The key is never copied anywhere else: not into a container, a log, Redis or the repository.
 * Only the public half leaves, through exportPublicKey(), for the clients' `Signed-By`.
 *
 * openRepoKey() proves the key can sign before it returns (it signs a probe), so a missing,
 * unreadable, expired or revoked key, or a wrong passphrase, fails with BAD_OPTION before a
 * publisher writes anything. The passphrase reaches gpg on stdin (never argv: `ps` shows argv).
 *
 * Shared by the APT and DNF publishers.
 */
export interface RepoKey {
  /** the signing key's fingerprint (the primary key's, upper-case hex) */
  readonly fingerprint: string;
  /**
   * the GNUPGHOME that holds the key, for tools that run gpg themselves (rpmsign): the temporary
   * one (mode 0700, gone after close()) a key file was imported into, or, for `gpg:<fingerprint>`,
   * the caller's own (left as it is by close()).
   */
  readonly gnupgHome: string;
  /** `gpg --clearsign`: InRelease from Release */
  clearSign(file: string, out: string): Promise<void>;
  /** `gpg --armor --detach-sign`: Release.gpg, repomd.xml.asc */
  detachSign(file: string, out: string): Promise<void>;
  /** the public key, binary (what `Signed-By` and `/usr/share/keyrings/*.gpg` hold) */
  exportPublicKey(out: string): Promise<void>;
  /** kills the temporary gpg-agent and removes the temporary GNUPGHOME (a `gpg:` key: nothing to undo) */
  close(): Promise<void>;
}

export interface RepoKeyOptions {
  /**
   * an OpenPGP secret key file (armored or binary), e.g. `gpg --export-secret-keys`; or
   * `gpg:<fingerprint>` (AGENT_KEY_PREFIX), a key in the caller's GNUPGHOME and gpg-agent
   */
  keyFile: string;
  /** the key's passphrase, when it has one; else the env var KFARM_REPO_KEY_PASSPHRASE */
  passphrase?: string;
  /** where the temporary GNUPGHOME is made (default: the system's temp dir) */
  tmpDir?: string;
}

/** `--repo-key gpg:<fingerprint>`: the key in the caller's own GNUPGHOME and gpg-agent, not a file. */
export const AGENT_KEY_PREFIX = 'gpg:';

/**
 * Pure: the fingerprint of a `gpg:<fingerprint>` key (upper case, spaces taken out, as
 * `gpg --fingerprint` prints it), or undefined for a key file. A full fingerprint only: a short
 * id or a user id could name another key than the one meant.
 */
export function agentKeyFingerprint(spec: string): string | undefined {
  if (!spec.startsWith(AGENT_KEY_PREFIX)) return undefined;
  return spec.slice(AGENT_KEY_PREFIX.length).replace(/\s+/g, '').toUpperCase();
}

/** The GNUPGHOME a `gpg:` key is looked for in: gpg's own rule ($GNUPGHOME, else ~/.gnupg). */
export function userGnupgHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.GNUPGHOME ? path.resolve(env.GNUPGHOME) : path.join(os.homedir(), '.gnupg');
}

/** The environment variable a passphrase-protected repository key's passphrase is read from. */
export const REPO_KEY_PASSPHRASE_ENV = 'KFARM_REPO_KEY_PASSPHRASE';

const SIGN_TIMEOUT_MS = 120_000;

/** One line of `gpg --with-colons --list-secret-keys`, the fields this file reads (gpg's doc/DETAILS). */
export interface SecretKeyLine {
  type: 'sec' | 'ssb';
  /** field 2: `e` expired, `r` revoked, `d`/`i`/`n` unusable */
  validity: string;
  /** field 12: usable capabilities, upper case for the whole key */
  capabilities: string;
  fingerprint: string | undefined;
}

/** Pure: the secret keys (primary and subkeys, with their fingerprints) from gpg's colon listing. */
export function parseSecretKeys(colons: string): SecretKeyLine[] {
  const keys: SecretKeyLine[] = [];
  for (const line of colons.split('\n')) {
    const f = line.split(':');
    if (f[0] === 'sec' || f[0] === 'ssb') keys.push({ type: f[0], validity: f[1] ?? '', capabilities: f[11] ?? '', fingerprint: undefined });
    else if (f[0] === 'fpr') {
      const last = keys[keys.length - 1];
      if (last && last.fingerprint === undefined) last.fingerprint = f[9];
    }
  }
  return keys;
}

/** Pure: why these keys cannot sign, or undefined when the primary key can (by itself or through a subkey). */
export function unusableReason(keys: readonly SecretKeyLine[]): string | undefined {
  const primaries = keys.filter((k) => k.type === 'sec');
  if (primaries.length === 0) return 'it holds no secret key (a public key cannot sign)';
  if (primaries.length > 1) return `it holds ${primaries.length} secret keys; give a file with exactly one`;
  const primary = primaries[0]!;
  if (primary.validity === 'e') return 'the key has expired';
  if (primary.validity === 'r') return 'the key is revoked';
  // the whole key's capabilities are upper case in field 12: S means something in it can sign
  if (!primary.capabilities.includes('S')) return 'the key has no signing capability (or its signing subkeys expired)';
  return undefined;
}

export async function openRepoKey(options: RepoKeyOptions): Promise<RepoKey> {
  const agentFingerprint = agentKeyFingerprint(options.keyFile);
  const keyFile = agentFingerprint === undefined ? path.resolve(options.keyFile) : options.keyFile;
  const passphrase = options.passphrase ?? process.env[REPO_KEY_PASSPHRASE_ENV] ?? '';
  const refuse = (why: string, hint?: string, cause?: unknown): KfarmError =>
    new KfarmError('BAD_OPTION', `repository key ${keyFile} cannot sign: ${why}`, {
      context: { keyFile },
      hint:
        hint ??
        'Give an OpenPGP secret key file (gpg --export-secret-keys --armor <id> > repo-key.asc), or gpg:<fingerprint> of a key in your GNUPGHOME, that can sign and has not expired.',
      ...(cause === undefined ? {} : { cause }),
    });
  // the home gpg runs in: a fresh one the key file is imported into, or the caller's own
  let home: string;
  // the probe's folder: the temporary home itself, or a temporary folder beside the caller's (never in it)
  let scratch: string;
  if (agentFingerprint === undefined) {
    try {
      await access(keyFile);
    } catch (err) {
      throw refuse('the file does not exist or cannot be read', undefined, err);
    }
    const tmp = options.tmpDir ?? os.tmpdir();
    await removeStaleGpgHomes(tmp);
    home = await mkdtemp(path.join(tmp, gpgHomePrefix()));
    await chmod(home, 0o700);
    scratch = home;
  } else {
    if (!/^[0-9A-F]{40}$|^[0-9A-F]{64}$/.test(agentFingerprint)) {
      throw refuse(
        `"${agentFingerprint}" is not a full fingerprint`,
        'Give the whole fingerprint (40 hex digits; gpg --list-secret-keys --with-colons shows it on its fpr line): --repo-key gpg:<fingerprint>.',
      );
    }
    home = userGnupgHome();
    try {
      await access(home);
    } catch (err) {
      throw refuse(`there is no GNUPGHOME ${home}`, 'Set GNUPGHOME to the gpg home that holds the key, or give the key as a file.', err);
    }
    scratch = await mkdtemp(path.join(options.tmpDir ?? os.tmpdir(), 'kfarm-gpg-probe-'));
  }
  const env = { ...(process.env as Record<string, string>), GNUPGHOME: home };
  // loopback pinentry: gpg takes the passphrase from fd 0, never prompts, never reads a tty
  // (for a `gpg:` key the caller's agent answers first from its cache)
  const gpg = (args: string[], input?: string): Promise<RunResult> =>
    run('gpg', ['--batch', '--yes', '--no-tty', '--pinentry-mode', 'loopback', ...(input === undefined ? [] : ['--passphrase-fd', '0']), ...args], {
      env,
      timeoutMs: SIGN_TIMEOUT_MS,
      allowFailure: true,
      ...(input === undefined ? {} : { input }),
    });
  const close =
    agentFingerprint === undefined
      ? async () => {
          await run('gpgconf', ['--kill', 'gpg-agent'], { env, allowFailure: true }).catch(() => undefined);
          await rm(home, { recursive: true, force: true });
        }
      : // the caller's home and agent are theirs: only the probe's folder goes
        async () => rm(scratch, { recursive: true, force: true });
  try {
    if (agentFingerprint === undefined) {
      const imported = await gpg(['--import', keyFile], passphrase);
      if (imported.exitCode !== 0) throw refuse(`gpg could not import it (${lastLine(imported.stderr)})`);
    }
    const listing = await gpg(['--with-colons', '--fixed-list-mode', '--list-secret-keys', ...(agentFingerprint === undefined ? [] : [agentFingerprint])]);
    const keys = parseSecretKeys(listing.stdout);
    if (agentFingerprint !== undefined && keys.length === 0) {
      throw refuse(
        `no secret key with this fingerprint in ${home}`,
        `Check it with GNUPGHOME=${home} gpg --list-secret-keys ${agentFingerprint}; set GNUPGHOME to the home that holds the key, or give the key as a file.`,
      );
    }
    const why = unusableReason(keys);
    if (why !== undefined) throw refuse(why);
    const fingerprint = keys.find((k) => k.type === 'sec')?.fingerprint ?? '';
    if (!/^[0-9A-F]{40,64}$/.test(fingerprint)) throw refuse('gpg listed no fingerprint for it');
    const signArgs = (mode: string[], file: string, out: string) => ['--local-user', fingerprint, '--digest-algo', 'SHA512', ...mode, '--output', out, file];
    const sign = async (what: string, mode: string[], file: string, out: string) => {
      const result = await gpg(signArgs(mode, file, out), passphrase);
      if (result.exitCode !== 0) {
        throw new KfarmError('COMMAND_FAILED', `gpg could not ${what} ${file}: ${lastLine(result.stderr)}`, { context: { file, fingerprint } });
      }
    };
    // the probe: a wrong passphrase, or a key gpg cannot use, fails here, before anything is written
    const probe = path.join(scratch, 'probe');
    await writeFile(probe, 'kfarm repository key probe\n');
    const probed = await gpg(signArgs(['--detach-sign'], probe, `${probe}.sig`), passphrase);
    if (probed.exitCode !== 0) {
      const bad = /bad passphrase|no passphrase|passphrase/i.test(probed.stderr);
      const agentHint = agentFingerprint === undefined ? '' : ', or unlock the key in your gpg-agent (sign something with it once: its agent caches the passphrase)';
      throw refuse(bad ? 'the passphrase is wrong or missing' : lastLine(probed.stderr), bad ? `Set ${REPO_KEY_PASSPHRASE_ENV} to the key's passphrase${agentHint}.` : undefined);
    }
    await rm(`${probe}.sig`, { force: true });
    return {
      fingerprint,
      gnupgHome: home,
      clearSign: (file, out) => sign('clear-sign', ['--clearsign'], file, out),
      detachSign: (file, out) => sign('detach-sign', ['--armor', '--detach-sign'], file, out),
      exportPublicKey: async (out) => {
        const exported = await run('gpg', ['--batch', '--yes', '--no-tty', '--output', out, '--export', fingerprint], { env, allowFailure: true });
        if (exported.exitCode !== 0) throw new KfarmError('COMMAND_FAILED', `gpg could not export the public key: ${lastLine(exported.stderr)}`, { context: { fingerprint } });
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

function lastLine(text: string): string {
  const lines = text
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '');
  return lines[lines.length - 1] ?? 'no message';
}
