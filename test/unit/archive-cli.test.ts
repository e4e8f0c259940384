import { describe, expect, it } from 'vitest';
import { isolatedEnv, kfarm } from '../helpers/kfarm-cli.js';

// Runs the compiled CLI (npm run build first). Bad input is refused before any network access.
describe('kfarm kernels --available: bad input', () => {
  it('a release kfarm has no recipe for is exit 2 listing the releases', async () => {
    const run = await kfarm(['kernels', '--available', 'debian-12', 'debian-10'], await isolatedEnv('archive-cli'));
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('kfarm has no recipe for release "debian-10"');
    expect(run.stderr).toContain('debian-11 (bullseye), debian-12 (bookworm), debian-13 (trixie)');
  });

  it('an arch kfarm has no recipe for is exit 2 listing the arches', async () => {
    const run = await kfarm(['kernels', '--available', '--arch', 'amd64,riscv64'], await isolatedEnv('archive-cli'));
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('kfarm has no recipe for arch "riscv64"');
    expect(run.stderr).toContain('amd64 (x86_64), arm64 (aarch64)');
  });

  it('releases or --arch without --available are exit 2', async () => {
    const run = await kfarm(['kernels', 'debian-12'], await isolatedEnv('archive-cli'));
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('go with --available');
  });
});

// A farm that cannot check the archive's signatures reads nothing from it (the indexes come over http).
describe('no keyring to verify the archive with', () => {
  const noKeyring = async () => ({ ...(await isolatedEnv('archive-cli')), KFARM_ARCHIVE_KEYRING: '/nonexistent/debian-archive-keyring.gpg' });

  for (const args of [
    ['kernels', '--available', 'debian-12'],
    ['images', 'sync', 'debian-12', '--arch', 'amd64', '--kernels', '6.1.0-0-amd64'],
  ]) {
    it(`kfarm ${args.slice(0, 2).join(' ')} is exit 3, saying which keyring to install or pass`, async () => {
      const run = await kfarm(args, await noKeyring());
      expect(run.exitCode, run.stderr).toBe(3);
      expect(run.stderr).toContain('kfarm: error: cannot verify the Debian archive: no keyring at /nonexistent/debian-archive-keyring.gpg');
      expect(run.stderr).toContain('apt-get install debian-archive-keyring');
      expect(run.stderr).toContain('KFARM_ARCHIVE_KEYRING');
      expect(run.stdout).toBe('');
    });
  }

  for (const args of [
    ['kernels', '--available', 'debian-12'],
    ['images', 'sync', 'debian-12', '--arch', 'amd64', '--kernels', '6.1.0-0-amd64'],
  ]) {
    it(`kfarm ${args.slice(0, 2).join(' ')} --keyring checks the archive with that keyring (none there: exit 3)`, async () => {
      const run = await kfarm([...args, '--keyring', '/nonexistent/mirror-keyring.gpg'], await isolatedEnv('archive-cli'));
      expect(run.exitCode, run.stderr).toBe(3);
      expect(run.stderr).toContain('no keyring at /nonexistent/mirror-keyring.gpg');
    });
  }

  it('--mirror or --keyring without --available is exit 2', async () => {
    const run = await kfarm(['kernels', '--keyring', '/k.gpg'], await isolatedEnv('archive-cli'));
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('go with --available');
  });
});
