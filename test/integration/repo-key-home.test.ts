import { setTimeout as sleep } from 'node:timers/promises';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { checkRpmSignatures, signRpms } from '../../src/publish/dnf-rpm.js';
import { openRepoKey } from '../../src/publish/repo-key.js';
import { kfarm, tempDir } from '../helpers/kfarm-cli.js';
import { PASSPHRASE, repoTestKeys, type RepoTestKeys } from '../helpers/repo-test-key.js';

/**
 * The repository key names the GNUPGHOME it lives in (`gnupgHome`): rpmsign runs gpg itself and
 * signs there, so the DNF publisher needs it, and must not find it by the folder's name. A key
 * file gets a temporary home; `gpg:<fingerprint>` is a key in the caller's own GNUPGHOME (here a
 * temporary one the test key is imported into, named by $GNUPGHOME as a user would), used in
 * place through its gpg-agent and never removed.
 */
let keys: RepoTestKeys;
let userHome: string;
let dir: string;
let fingerprint: string;
const savedHome = process.env.GNUPGHOME;

beforeAll(async () => {
  keys = await repoTestKeys();
  dir = await tempDir('repo-key-home');
  userHome = path.join(dir, 'user-gnupg');
  await mkdir(userHome, { mode: 0o700 });
  await execa('gpg', ['--batch', '--import', keys.plain], { env: { GNUPGHOME: userHome } });
  const listed = await execa('gpg', ['--batch', '--with-colons', '--list-secret-keys'], { env: { GNUPGHOME: userHome } });
  fingerprint = listed.stdout
    .split('\n')
    .find((l) => l.startsWith('fpr:'))!
    .split(':')[9]!;
}, 120_000);
afterEach(() => {
  if (savedHome === undefined) delete process.env.GNUPGHOME;
  else process.env.GNUPGHOME = savedHome;
});
afterAll(async () => {
  await execa('gpgconf', ['--kill', 'gpg-agent'], { env: { GNUPGHOME: userHome }, reject: false });
  await keys?.close();
});

const fingerprintIn = async (home: string) =>
  (await execa('gpg', ['--batch', '--with-colons', '--list-secret-keys'], { env: { GNUPGHOME: home } })).stdout
    .split('\n')
    .find((l) => l.startsWith('fpr:'))!
    .split(':')[9]!;
const secretKeysIn = async (home: string) => (await execa('gpg', ['--batch', '--with-colons', '--list-secret-keys'], { env: { GNUPGHOME: home }, reject: false })).stdout;

describe('RepoKey.gnupgHome', () => {
  it('is a 0700 gpg home holding the secret key, removed by close()', async () => {
    const key = await openRepoKey({ keyFile: keys.plain });
    const home = key.gnupgHome;
    try {
      expect((await stat(home)).mode & 0o777).toBe(0o700);
      expect(await secretKeysIn(home)).toContain(`fpr:::::::::${key.fingerprint}:`);
    } finally {
      await key.close();
    }
    await expect(stat(home)).rejects.toMatchObject({ code: 'ENOENT' });
  }, 60_000);
});

describe('a key in gpg-agent: --repo-key gpg:<fingerprint>', () => {
  it("signs in the caller's own GNUPGHOME (what gpgv verifies), rpmsign signs there too, and close() leaves that home", async () => {
    process.env.GNUPGHOME = userHome;
    const before = (await readdir(userHome)).sort();
    const key = await openRepoKey({ keyFile: `gpg:${fingerprint.toLowerCase()}` });
    try {
      expect(key.fingerprint).toBe(fingerprint);
      expect(key.gnupgHome).toBe(userHome);
      const release = path.join(dir, 'Release');
      await writeFile(release, 'Origin: kfarm\nCodename: bookworm\n');
      await key.clearSign(release, path.join(dir, 'InRelease'));
      await key.detachSign(release, path.join(dir, 'Release.gpg'));
      await key.exportPublicKey(path.join(dir, 'key.gpg'));
      expect((await readFile(path.join(dir, 'key.gpg'))).equals(await readFile(keys.keyring))).toBe(true);
      for (const args of [[path.join(dir, 'InRelease')], [path.join(dir, 'Release.gpg'), release]]) {
        const v = await execa('gpgv', ['--keyring', keys.keyring, ...args], { reject: false });
        expect(v.exitCode, v.stderr).toBe(0);
      }

      // rpmsign, pointed at gnupgHome as the DNF publisher does, signs with the user's key
      const rpm = await tinyRpm();
      await signRpms([rpm], { fingerprint: key.fingerprint, gnupgHome: key.gnupgHome });
      const armored = (await execa('gpg', ['--batch', '--armor', '--export', fingerprint], { env: { GNUPGHOME: userHome } })).stdout;
      expect(await checkRpmSignatures([rpm], armored)).toEqual([]);
    } finally {
      await key.close();
    }
    // the user's home is theirs: still there, the secret key in it, nothing of kfarm's left behind
    expect((await stat(userHome)).isDirectory()).toBe(true);
    expect(await secretKeysIn(userHome)).toContain(`fpr:::::::::${fingerprint}:`);
    expect((await readdir(userHome)).filter((n) => !before.includes(n) && !/^(trustdb\.gpg|S\.gpg-agent.*|random_seed|\.#lk.*)$/.test(n))).toEqual([]);
  }, 120_000);

  it("a protected key in the user's home: rpmsign gets the passphrase from a file in its own temporary home, never one in the user's", async () => {
    const protectedHome = path.join(dir, 'user-gnupg-protected');
    await mkdir(protectedHome, { mode: 0o700 });
    await execa('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', PASSPHRASE, '--import', keys.protected], { env: { GNUPGHOME: protectedHome } });
    process.env.GNUPGHOME = protectedHome;
    const key = await openRepoKey({ keyFile: 'gpg:' + (await fingerprintIn(protectedHome)), passphrase: PASSPHRASE });
    // every name seen in the user's home while rpmsign runs (the old code put its passphrase file
    // there for the whole signing, hundreds of ms): polled, since inotify instances run out on a busy CI
    const created = new Set<string>();
    let signing = true;
    const polling = (async () => {
      while (signing) {
        for (const name of await readdir(protectedHome)) created.add(name);
        await sleep(5);
      }
    })();
    try {
      const rpm = await tinyRpm();
      await signRpms([rpm], { fingerprint: key.fingerprint, gnupgHome: key.gnupgHome, passphrase: PASSPHRASE });
      const armored = (await execa('gpg', ['--batch', '--armor', '--export', key.fingerprint], { env: { GNUPGHOME: protectedHome } })).stdout;
      expect(await checkRpmSignatures([rpm], armored)).toEqual([]);
    } finally {
      signing = false;
      await polling;
      await key.close();
      await execa('gpgconf', ['--kill', 'gpg-agent'], { env: { GNUPGHOME: protectedHome }, reject: false });
    }
    expect([...created].filter((n) => /pass/i.test(n))).toEqual([]);
  }, 120_000);

  it('an unknown fingerprint: BAD_OPTION naming the home and what to do; the home is left as it was', async () => {
    process.env.GNUPGHOME = userHome;
    const unknown = 'A'.repeat(40);
    const err = await openRepoKey({ keyFile: `gpg:${unknown}` }).catch((e: unknown) => e);
    expect(isKfarmError(err, 'BAD_OPTION'), String(err)).toBe(true);
    expect((err as Error).message).toContain(`no secret key with this fingerprint in ${userHome}`);
    expect((err as { hint?: string }).hint).toContain(`gpg --list-secret-keys ${unknown}`);
    expect(await secretKeysIn(userHome)).toContain(`fpr:::::::::${fingerprint}:`);

    const short = await openRepoKey({ keyFile: 'gpg:DEADBEEF' }).catch((e: unknown) => e);
    expect(isKfarmError(short, 'BAD_OPTION'), String(short)).toBe(true);
    expect((short as Error).message).toContain('is not a full fingerprint');
  }, 60_000);

  it('kfarm publish --export-key with gpg:<fingerprint>: the public key; an unknown one exits 2 with the hint', async () => {
    const env = { GNUPGHOME: userHome };
    const out = path.join(dir, 'exported.gpg');
    const ok = await kfarm(['publish', '--export-key', out, '--repo-key', `gpg:${fingerprint}`], env);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect((await readFile(out)).equals(await readFile(keys.keyring))).toBe(true);
    const bad = await kfarm(['publish', '--export-key', path.join(dir, 'none.gpg'), '--repo-key', `gpg:${'B'.repeat(40)}`], env);
    expect(bad.exitCode, bad.stderr).toBe(2);
    expect(bad.stderr).toContain('no secret key with this fingerprint');
    expect(bad.stderr).toContain('set GNUPGHOME to the home that holds the key');
  }, 60_000);
});

/** the smallest binary RPM rpmbuild makes (no files): something for rpmsign to sign */
async function tinyRpm(): Promise<string> {
  const top = path.join(dir, 'rpmbuild');
  await mkdir(path.join(top, 'SPECS'), { recursive: true });
  const spec = path.join(top, 'SPECS', 'tiny.spec');
  await writeFile(spec, 'Name: tiny\nVersion: 1\nRelease: 1\nSummary: t\nLicense: MIT\nBuildArch: noarch\n%description\nt\n%files\n');
  await execa('rpmbuild', ['--define', `_topdir ${top}`, '-bb', spec]);
  return path.join(top, 'RPMS', 'noarch', 'tiny-1-1.noarch.rpm');
}
