import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';

/**
 * shellcheck over every shell script kfarm ships or runs: the build driver, the verify boot
 * script, the signing script, scripts/ (with what they source, -x) and examples/ci/*.sh. Any finding fails; a
 * line whose code is right says so with an inline `# shellcheck disable=SCxxxx` and why.
 * (scripts/setup.sh installs shellcheck when KFARM_TEST_TOOLS=1, as scripts/test.sh sets.)
 */
async function shellScripts(): Promise<string[]> {
  const inDir = async (dir: string) => (await readdir(path.join(packageRoot, dir))).filter((f) => f.endsWith('.sh')).map((f) => path.join(dir, f));
  return ['src/dkms/driver.sh', 'src/verify/boot.sh', 'src/signing/sign.sh', ...(await inDir('scripts')), ...(await inDir('scripts/lib')), ...(await inDir('examples/ci'))];
}

const shellcheck = (files: string[], cwd = packageRoot) => execa('shellcheck', ['--external-sources', '--source-path=SCRIPTDIR', '--format=gcc', ...files], { cwd, reject: false });

describe('shellcheck', () => {
  it('finds nothing in driver.sh, boot.sh, sign.sh, scripts/*.sh, scripts/lib/*.sh and examples/ci/*.sh', async () => {
    const files = await shellScripts();
    expect(files.length).toBeGreaterThanOrEqual(8);
    const run = await shellcheck(files);
    expect(run.stderr).toBe('');
    expect(run.stdout, 'shellcheck findings').toBe('');
    expect(run.exitCode).toBe(0);
  }, 60_000);

  it('fails on a finding (the check above can fail)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'kfarm-shellcheck-'));
    try {
      await writeFile(path.join(dir, 'bad.sh'), '#!/bin/bash\nrm -rf $1/x\n');
      const run = await shellcheck(['bad.sh'], dir);
      expect(run.exitCode).not.toBe(0);
      expect(run.stdout).toContain('SC2086');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
