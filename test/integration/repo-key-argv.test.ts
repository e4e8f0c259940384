import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRepoKey } from '../../src/publish/repo-key.js';
import { tempDir } from '../helpers/kfarm-cli.js';
import { PASSPHRASE, repoTestKeys, type RepoTestKeys } from '../helpers/repo-test-key.js';

/**
 * Any user of the host sees every process's arguments (`ps`, /proc/<pid>/cmdline): the
 * repository key's passphrase must reach gpg some other way. A `gpg` first on PATH records
 * every command line kfarm runs it with, then runs the real one (real signatures, real
 * passphrase check).
 */
let keys: RepoTestKeys;
let dir: string;
let argvLog: string;
const saved = { PATH: process.env.PATH, log: process.env.KFARM_TEST_GPG_ARGV };

beforeAll(async () => {
  keys = await repoTestKeys();
  dir = await tempDir('repo-key-argv');
  argvLog = path.join(dir, 'argv.log');
  const real = (await execa('sh', ['-c', 'command -v gpg'])).stdout.trim();
  const wrapper = path.join(dir, 'bin', 'gpg');
  await execa('mkdir', ['-p', path.dirname(wrapper)]);
  await writeFile(wrapper, `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a" >>"$KFARM_TEST_GPG_ARGV"; done\necho ---- >>"$KFARM_TEST_GPG_ARGV"\nexec ${real} "$@"\n`);
  await chmod(wrapper, 0o755);
  process.env.PATH = `${path.dirname(wrapper)}:${saved.PATH ?? ''}`;
  process.env.KFARM_TEST_GPG_ARGV = argvLog;
}, 120_000);

afterAll(async () => {
  process.env.PATH = saved.PATH;
  if (saved.log === undefined) delete process.env.KFARM_TEST_GPG_ARGV;
  else process.env.KFARM_TEST_GPG_ARGV = saved.log;
  await keys?.close();
});

describe('the repository key on the process list', () => {
  it("a protected key's passphrase is in no gpg command line, through opening, signing and exporting", async () => {
    const key = await openRepoKey({ keyFile: keys.protected, passphrase: PASSPHRASE, tmpDir: dir });
    try {
      const release = path.join(dir, 'Release');
      await writeFile(release, 'Origin: kfarm\n');
      await key.clearSign(release, path.join(dir, 'InRelease'));
      await key.detachSign(release, path.join(dir, 'Release.gpg'));
      await key.exportPublicKey(path.join(dir, 'key.gpg'));
    } finally {
      await key.close();
    }
    const argv = await readFile(argvLog, 'utf8');
    // the wrapper saw the import, the probe and both signatures
    expect(argv.split('----\n').filter((c) => c.includes('--import')).length).toBe(1);
    expect(argv.split('----\n').filter((c) => c.includes('--clearsign') || c.includes('--detach-sign')).length).toBeGreaterThanOrEqual(3);
    expect(argv).not.toContain(PASSPHRASE);
    // nor any line of the secret key itself (it goes to gpg as a file name)
    const secretLines = (await readFile(keys.protected, 'utf8')).split('\n').filter((l) => l.length > 40);
    for (const line of secretLines) expect(argv).not.toContain(line);
  });
});
