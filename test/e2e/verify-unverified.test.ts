import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BuildReport } from '../../src/report/report.js';
import { debian12Kernels, example, fixture, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';

/**
 * A load check that verified nothing is no pass: `kfarm verify` and `kfarm build --verify load`
 * exit 1 when every row is not-verified (before: 0, so a CI job gating on the exit status passed
 * when nothing booted), unless --allow-unverified says that is acceptable.
 */
const { k61, k612 } = await debian12Kernels();
let env: Record<string, string>;

const readReport = async (out: string) => JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;

beforeAll(async () => {
  env = await isolatedEnv('verify-unverified');
});

describe('nothing verified is exit 1 unless --allow-unverified', () => {
  it('kfarm build --verify load where the only kernel is excluded: exit 1 saying why; with --allow-unverified 0', async () => {
    const out = await tempDir('unverified-excluded');
    const run = await kfarm(['build', fixture('exclusive-61'), '-k', k612, '-o', out, '--verify', 'load', '--accel', 'tcg'], env, 600_000);
    expect(run.exitCode, run.stderr).toBe(1);
    expect(run.stderr).toMatch(/no kernel was verified \(1 row\(s\) not-verified: 1 excluded\).*--allow-unverified/);
    const report = await readReport(out);
    expect(report.kernels).toHaveLength(1);
    expect(report.kernels[0]).toMatchObject({ verdict: 'excluded', load: { verdict: 'not-verified', reason: 'excluded' } });

    const allowed = await kfarm(['build', fixture('exclusive-61'), '-k', k612, '-o', out, '--verify', 'load', '--accel', 'tcg', '--allow-unverified'], env, 600_000);
    expect(allowed.exitCode, allowed.stderr).toBe(0);
    expect(allowed.stderr).not.toMatch(/no kernel was verified/);

    const verify = await kfarm(['verify', out, '--accel', 'tcg'], env, 600_000);
    expect(verify.exitCode, verify.stderr).toBe(1);
    expect(verify.stderr).toMatch(/no kernel was verified/);
    const verifyAllowed = await kfarm(['verify', out, '--accel', 'tcg', '--allow-unverified'], env, 600_000);
    expect(verifyAllowed.exitCode, verifyAllowed.stderr).toBe(0);
  }, 1_200_000);

  it(`kfarm verify where the guest never reaches init (${k61} booted with an init that does not exist): not-verified, exit 1`, async () => {
    const out = await tempDir('unverified-boot');
    const build = await kfarm(['build', example('hello'), '-k', k61, '-o', out], env, 600_000);
    expect(build.exitCode, build.stderr).toBe(0);
    // what a host whose guests boot nothing gives: a kernel that never runs kfarm's init
    const run = await kfarm(['verify', out, '--accel', 'tcg', '--cmdline', 'rdinit=kfarm-no-such-init init=kfarm-no-such-init', '--boot-timeout', '60'], env, 900_000);
    const load = (await readReport(out)).kernels.find((k) => k.kernel === k61)?.load;
    expect(load?.verdict, run.stderr).toBe('not-verified');
    expect(run.exitCode, run.stderr).toBe(1);
    expect(run.stderr).toMatch(/no kernel was verified \(1 row\(s\) not-verified: 1 (boot-failed|timeout)\)/);
    const allowed = await kfarm(
      ['verify', out, '--accel', 'tcg', '--cmdline', 'rdinit=kfarm-no-such-init init=kfarm-no-such-init', '--boot-timeout', '60', '--allow-unverified'],
      env,
      900_000,
    );
    expect(allowed.exitCode, allowed.stderr).toBe(0);
  }, 1_800_000);
});
