import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { tempDir } from './kfarm-cli.js';

/**
 * Repository signing keys for the publish tests, made with gpg in a throw-away GNUPGHOME and
 * exported as secret key files (what `kfarm publish --repo-key` takes): `plain` (no
 * passphrase), `protected` (passphrase `PASSPHRASE`), `expired` (expired a second after it was
 * made), `publicOnly` (a public key: cannot sign), and `keyring`, the plain key's public half.
 */
export interface RepoTestKeys {
  dir: string;
  plain: string;
  protected: string;
  expired: string;
  publicOnly: string;
  /** the plain key's public key, binary: what a client's Signed-By names */
  keyring: string;
  close(): Promise<void>;
}

export const PASSPHRASE = 'correct horse battery staple';

export async function repoTestKeys(): Promise<RepoTestKeys> {
  const dir = await tempDir('repo-key');
  const home = path.join(dir, 'home');
  await mkdir(home, { mode: 0o700 });
  const env = { GNUPGHOME: home };
  // stripFinalNewline off: a binary export whose last byte happens to be 0x0a (1 key in 256)
  // would otherwise lose it, and every signature check against that keyring fails
  const gpg = async (args: string[]) =>
    Buffer.from((await execa('gpg', ['--batch', '--yes', '--quiet', '--pinentry-mode', 'loopback', ...args], { env, encoding: 'buffer', stripFinalNewline: false })).stdout);
  const uid = (name: string) => `kfarm test repo ${name} <${name}@kfarm.invalid>`;
  await gpg(['--passphrase', '', '--quick-gen-key', uid('plain'), 'ed25519', 'sign', 'never']);
  await gpg(['--passphrase', PASSPHRASE, '--quick-gen-key', uid('protected'), 'ed25519', 'sign', 'never']);
  await gpg(['--passphrase', '', '--quick-gen-key', uid('expired'), 'ed25519', 'sign', 'seconds=1']);
  // each key by its fingerprint, and each export checked not empty: gpg exits 0 when a name
  // matches nothing, and a test would then see a signature by a key it was never given
  const fingerprint = async (name: string) => {
    const fpr = (await gpg(['--with-colons', '--list-keys', uid(name)]))
      .toString()
      .split('\n')
      .find((l) => l.startsWith('fpr:'))
      ?.split(':')[9];
    if (!fpr) throw new Error(`gpg made no ${name} key`);
    return fpr;
  };
  const fpr = { plain: await fingerprint('plain'), protected: await fingerprint('protected'), expired: await fingerprint('expired') };
  const out = async (name: string, data: Buffer) => {
    if (data.length === 0) throw new Error(`gpg exported nothing for ${name}`);
    const file = path.join(dir, name);
    await writeFile(file, data);
    return file;
  };
  const keys: RepoTestKeys = {
    dir,
    plain: await out('plain.asc', await gpg(['--armor', '--export-secret-keys', fpr.plain])),
    protected: await out('protected.asc', await gpg(['--passphrase', PASSPHRASE, '--armor', '--export-secret-keys', fpr.protected])),
    expired: await out('expired.asc', await gpg(['--armor', '--export-secret-keys', fpr.expired])),
    publicOnly: await out('public-only.asc', await gpg(['--armor', '--export', fpr.plain])),
    keyring: await out('plain.gpg', await gpg(['--export', fpr.plain])),
    close: async () => {
      await execa('gpgconf', ['--kill', 'gpg-agent'], { env, reject: false });
      await rm(dir, { recursive: true, force: true });
    },
  };
  // the expired key must have expired by the time a test imports it
  await new Promise((r) => setTimeout(r, 1500));
  return keys;
}
