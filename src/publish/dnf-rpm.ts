import { access, constants, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KfarmError } from '../errors/kfarm-error.js';
import { run } from '../process/run.js';
import { makeDirs } from '../util/make-dir.js';
import type { RpmIdentity } from './dnf-manifest.js';
import type { RepoKey } from './repo-key.js';
import { saysNoSpace } from './full-disk.js';

/**
 * The host's rpm and rpmsign, for the DNF publisher: a package's header fields, signing with
 * the repository key, and checking the signature the way a client will (rpm -K against a
 * database that trusts only that key). No ~/.rpmmacros of the user's: HOME is a temp dir.
 */

/** What rpmsign needs of the repository key (repo-key.ts's RepoKey): gpg's home holding it, and its fingerprint. */
export interface RpmSigningKey extends Pick<RepoKey, 'fingerprint' | 'gnupgHome'> {
  /** when the key has one; given to gpg in a 0600 file of rpm's temporary 0700 home, never on argv */
  passphrase?: string;
}

const RPM_TIMEOUT_MS = 300_000;

async function withHome<T>(work: (home: string, env: Record<string, string>) => Promise<T>): Promise<T> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'kfarm-rpm-'));
  try {
    return await work(home, { HOME: home, LC_ALL: 'C', TZ: 'UTC', PATH: process.env.PATH ?? '/usr/bin:/bin' });
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** name, epoch, version, release and arch as the package's header says (signatures not checked here). */
export async function readRpmIdentity(file: string): Promise<RpmIdentity> {
  return withHome(async (_home, env) => {
    const r = await run('rpm', ['-qp', '--nosignature', '--nodigest', '--qf', '%{NAME}\\n%|EPOCH?{%{EPOCH}}:{}|\\n%{VERSION}\\n%{RELEASE}\\n%{ARCH}\\n', file], {
      env,
      allowFailure: true,
      timeoutMs: RPM_TIMEOUT_MS,
    });
    const [name, epoch, version, release, arch] = r.stdout.split('\n');
    if (r.exitCode !== 0 || !name || version === undefined || release === undefined || !arch) {
      throw new KfarmError('BAD_OPTION', `${file} is not an RPM package rpm can read: ${lastLine(r.stderr || r.stdout)}`, {
        context: { file },
        hint: 'Pack the out dir again (`kfarm pack <out-dir> --format kmod-rpm,dkms-rpm`).',
      });
    }
    return { name, ...(epoch ? { epoch: Number(epoch) } : {}), version, release, arch };
  });
}

/** Absolute path of `gpg` on PATH: rpm runs %__gpg itself, and its default (gpg2) is not Debian's name. */
async function gpgPath(): Promise<string> {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const candidate = path.join(dir || '.', 'gpg');
    if (
      await access(candidate, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  throw new KfarmError('COMMAND_FAILED', 'gpg is not installed: kfarm signs RPMs with it', { hint: 'Install gnupg (`apt-get install gnupg`).' });
}

/**
 * `rpmsign --addsign` each file in place, with the repository key: rpm's own gpg call (the
 * %__gpg_sign_cmd macro) pointed at the key's gnupg home and fingerprint, batch and loopback so
 * it never asks a terminal. A header signature (V4, over the header, which holds the payload's
 * digest) is what dnf's gpgcheck verifies.
 */
export async function signRpms(files: readonly string[], key: RpmSigningKey): Promise<void> {
  if (files.length === 0) return;
  const gpg = await gpgPath();
  await withHome(async (home, env) => {
    // the passphrase file lives in rpm's own 0700 temporary home, removed with it: a gpg: key's
    // gnupg home is the user's own, where kfarm leaves nothing
    const passFile = key.passphrase ? path.join(home, 'rpmsign-pass') : undefined;
    if (passFile) await writeFile(passFile, key.passphrase ?? '', { mode: 0o600 });
    const extra = ['--batch', '--no-tty', '--pinentry-mode', 'loopback', ...(passFile ? ['--passphrase-file', passFile] : [])].join(' ');
    const defines: Record<string, string> = { __gpg: gpg, _gpg_path: key.gnupgHome, _gpg_name: key.fingerprint, _gpg_digest_algo: 'sha256', _gpg_sign_cmd_extra_args: extra };
    // rpmsign takes many files per call; a few hundred per call keeps argv short
    for (let i = 0; i < files.length; i += 200) {
      const batch = files.slice(i, i + 200);
      const r = await run('rpmsign', [...Object.entries(defines).flatMap(([k, v]) => ['--define', `${k} ${v}`]), '--addsign', ...batch], {
        env: { ...env, GNUPGHOME: key.gnupgHome },
        allowFailure: true,
        timeoutMs: RPM_TIMEOUT_MS,
        input: '',
      });
      if (r.exitCode !== 0) {
        throw new KfarmError(
          'COMMAND_FAILED',
          `rpmsign could not sign ${batch.length === 1 ? batch[0] : `${batch.length} packages`}: ${noSpaceLine(r.stderr) ?? lastLine(r.stderr || r.stdout)}`,
          {
            context: { fingerprint: key.fingerprint },
            hint: 'Install rpm (Debian: `apt-get install rpm`, which brings rpmsign) and check the repository key can sign.',
          },
        );
      }
    }
  });
}

/**
 * `rpm -K` of each file against a fresh rpm database that holds only `armoredKey`, as a client
 * that imported the repository's key checks it: every file must say `digests signatures OK`.
 * Returns the files that do not, with rpm's word for why.
 */
export async function checkRpmSignatures(files: readonly string[], armoredKey: string): Promise<Array<{ file: string; why: string }>> {
  if (files.length === 0) return [];
  return withHome(async (home, env) => {
    const db = path.join(home, 'rpmdb');
    await makeDirs(db);
    const keyFile = path.join(home, 'key.asc');
    await writeFile(keyFile, armoredKey);
    const imported = await run('rpm', ['--dbpath', db, '--import', keyFile], { env, allowFailure: true, timeoutMs: RPM_TIMEOUT_MS });
    if (imported.exitCode !== 0) throw new KfarmError('COMMAND_FAILED', `rpm could not import the repository's public key: ${lastLine(imported.stderr)}`);
    const bad: Array<{ file: string; why: string }> = [];
    for (let i = 0; i < files.length; i += 200) {
      const batch = files.slice(i, i + 200);
      const r = await run('rpm', ['--dbpath', db, '-K', ...batch], { env, allowFailure: true, timeoutMs: RPM_TIMEOUT_MS });
      bad.push(...unverified(batch, r.stdout));
    }
    return bad;
  });
}

/** Pure: the files whose `rpm -K` line is not `<file>: digests signatures OK` (a missing line counts). */
export function unverified(files: readonly string[], output: string): Array<{ file: string; why: string }> {
  const said = new Map<string, string>();
  for (const line of output.split('\n')) {
    const at = line.lastIndexOf(': ');
    if (at > 0) said.set(line.slice(0, at), line.slice(at + 2).trim());
  }
  return files.flatMap((file) => {
    const verdict = said.get(file);
    return verdict === 'digests signatures OK' ? [] : [{ file, why: verdict ?? 'rpm said nothing about it' }];
  });
}

function lastLine(text: string): string {
  const lines = text
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '');
  return lines[lines.length - 1] ?? 'no message';
}

/** gpg's "No space left on device" line, which rpmsign follows with its own "gpg exec failed" (full-disk.ts maps it) */
function noSpaceLine(text: string): string | undefined {
  return text.split('\n').find((l) => saysNoSpace(l));
}
