import { stat } from 'node:fs/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRepoKey } from '../../src/publish/repo-key.js';
import { repoTestKeys, type RepoTestKeys } from '../helpers/repo-test-key.js';

/**
 * The repository key names its temporary GNUPGHOME (`gnupgHome`): rpmsign runs gpg itself and
 * signs there, so the DNF publisher needs it, and must not find it by the folder's name.
 */
let keys: RepoTestKeys;
beforeAll(async () => {
  keys = await repoTestKeys();
}, 120_000);
afterAll(async () => keys?.close());

describe('RepoKey.gnupgHome', () => {
  it('is a 0700 gpg home holding the secret key, removed by close()', async () => {
    const key = await openRepoKey({ keyFile: keys.plain });
    const home = key.gnupgHome;
    try {
      expect((await stat(home)).mode & 0o777).toBe(0o700);
      const listed = await execa('gpg', ['--batch', '--with-colons', '--list-secret-keys'], { env: { GNUPGHOME: home } });
      expect(listed.stdout).toContain(`fpr:::::::::${key.fingerprint}:`);
    } finally {
      await key.close();
    }
    await expect(stat(home)).rejects.toMatchObject({ code: 'ENOENT' });
  }, 60_000);
});
