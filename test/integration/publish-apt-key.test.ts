import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { openRepoKey } from '../../src/publish/repo-key.js';
import { PASSPHRASE, repoTestKeys, type RepoTestKeys } from '../helpers/repo-test-key.js';
import { tempDir } from '../helpers/kfarm-cli.js';

/**
 * The repository key with real gpg: what it signs verifies with gpgv against only the exported
 * public key; each key that cannot sign is refused with BAD_OPTION at open, before a publisher
 * writes anything, and its temporary GNUPGHOME is gone.
 */
let keys: RepoTestKeys;
let dir: string;

beforeAll(async () => {
  keys = await repoTestKeys();
  dir = await tempDir('repo-key-out');
}, 120_000);
afterAll(async () => keys?.close());

const gpgHomes = async () => (await readdir(dir)).filter((n) => n.startsWith('kfarm-gpg-')).sort();

describe('openRepoKey', () => {
  it('clear-signs and detach-signs what gpgv verifies with the exported public key alone', async () => {
    const key = await openRepoKey({ keyFile: keys.plain });
    try {
      const release = path.join(dir, 'Release');
      await writeFile(release, 'Origin: kfarm\nCodename: bookworm\n');
      await key.clearSign(release, path.join(dir, 'InRelease'));
      await key.detachSign(release, path.join(dir, 'Release.gpg'));
      await key.exportPublicKey(path.join(dir, 'key.gpg'));
      expect(key.fingerprint).toMatch(/^[0-9A-F]{40}$/);
      const pub = await readFile(path.join(dir, 'key.gpg'));
      expect(pub[0]! & 0x80, 'binary OpenPGP, not armor').toBe(0x80);
      expect(pub.equals(await readFile(keys.keyring))).toBe(true);
      const clear = await execa('gpgv', ['--keyring', path.join(dir, 'key.gpg'), path.join(dir, 'InRelease')], { reject: false });
      expect(clear.exitCode, clear.stderr).toBe(0);
      const detached = await execa('gpgv', ['--keyring', path.join(dir, 'key.gpg'), path.join(dir, 'Release.gpg'), release], { reject: false });
      expect(detached.exitCode, detached.stderr).toBe(0);
      expect(await readFile(path.join(dir, 'Release.gpg'), 'utf8')).toContain('-----BEGIN PGP SIGNATURE-----');
      // one byte changed after signing: gpgv refuses
      await writeFile(release, 'Origin: kfarm\nCodename: bookwarm\n');
      const tampered = await execa('gpgv', ['--keyring', path.join(dir, 'key.gpg'), path.join(dir, 'Release.gpg'), release], { reject: false });
      expect(tampered.exitCode).not.toBe(0);
    } finally {
      await key.close();
    }
  }, 60_000);

  it('opens a passphrase-protected key with its passphrase, and refuses a wrong one', async () => {
    const key = await openRepoKey({ keyFile: keys.protected, passphrase: PASSPHRASE });
    await key.close();
    const err = await openRepoKey({ keyFile: keys.protected, passphrase: 'wrong' }).catch((e: unknown) => e);
    expect(isKfarmError(err, 'BAD_OPTION'), String(err)).toBe(true);
    expect(String((err as Error).message)).toMatch(/passphrase/);
  }, 60_000);

  it.each([
    ['missing', () => path.join(dir, 'no-such-key.asc'), /does not exist/],
    ['expired', () => keys.expired, /the key has expired/],
    ['public only', () => keys.publicOnly, /no secret key/],
  ])(
    'refuses a %s key with BAD_OPTION and leaves no GNUPGHOME behind',
    async (_name, file, message) => {
      const before = await gpgHomes();
      const err = await openRepoKey({ keyFile: file(), tmpDir: dir }).catch((e: unknown) => e);
      expect(isKfarmError(err, 'BAD_OPTION'), String(err)).toBe(true);
      expect((err as Error).message).toMatch(message);
      expect(await gpgHomes()).toEqual(before);
    },
    60_000,
  );
});

describe('a publish killed with SIGKILL', () => {
  it("leaves its temporary home (a copy of the secret key) and its gpg-agent: the next key opened removes both; a live process's home stays", async () => {
    const tmp = await tempDir('repo-key-stale');
    // a pid that is gone: a process that ran and exited
    const gone = (await execa('sh', ['-c', 'echo $$'])).stdout.trim();
    const stale = path.join(tmp, `kfarm-gpg-${gone}-AbC123`);
    const live = path.join(tmp, `kfarm-gpg-${process.pid}-XyZ789`);
    for (const home of [stale, live]) {
      await mkdir(home, { mode: 0o700 });
      await execa('gpg', ['--batch', '--import', keys.plain], { env: { GNUPGHOME: home } });
      // the agent a signing run starts, still running after its process was killed
      await execa('gpg-connect-agent', ['/bye'], { env: { GNUPGHOME: home } });
    }
    const agentOf = async (home: string) => (await execa('pgrep', ['-f', `gpg-agent --homedir ${home}`], { reject: false })).exitCode === 0;
    expect(await agentOf(stale)).toBe(true);
    const key = await openRepoKey({ keyFile: keys.plain, tmpDir: tmp });
    try {
      expect(await readdir(tmp)).not.toContain(path.basename(stale));
      expect(await agentOf(stale)).toBe(false);
      expect(await readdir(tmp)).toContain(path.basename(live));
      expect(path.basename(key.gnupgHome)).toMatch(new RegExp(`^kfarm-gpg-${process.pid}-`));
    } finally {
      await key.close();
      await execa('gpgconf', ['--kill', 'gpg-agent'], { env: { GNUPGHOME: live }, reject: false });
    }
  }, 60_000);
});
