import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BuildReport } from '../../src/report/report.js';
import { defaultKernels, example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';
import { makeTestToken, type TestToken } from '../helpers/softhsm.js';

/**
 * Issue 24's "done when", as one command: `kfarm build examples/hello --sign-key pkcs11:...
 * --verify load --secure-boot` signs with a key that exists only in SoftHSM2 and reports
 * `loaded` under Secure Boot with lockdown for each default amd64 kernel: the certificate the
 * token signing wrote (signing-cert.der) is the MOK each guest boots with.
 */
let env: Record<string, string>;
let token: TestToken;
let out: string;
let kernels: string[];
let built: Awaited<ReturnType<typeof kfarm>>;

beforeAll(async () => {
  env = await isolatedEnv('sb-token');
  kernels = (await defaultKernels()).split(',').filter((k) => k.endsWith('-amd64'));
  token = await makeTestToken(await tempDir('sb-token-hsm'), 'kfarm sb token');
  out = await tempDir('sb-token-out');
  built = await kfarm(
    [
      'build',
      example('hello'),
      '-o',
      out,
      '--sign-key',
      `pkcs11:token=${token.label};object=modsign`,
      '--sign-cert',
      token.certPath,
      '--verify',
      'load',
      '--secure-boot',
      '--accel',
      'tcg',
    ],
    { ...env, ...token.env, KFARM_PKCS11_PIN: token.pin },
    1_500_000,
  );
}, 1_500_000);

describe('a key in a token, proven under Secure Boot', () => {
  it('signs hello with the SoftHSM2 key and loads it under Secure Boot with lockdown on every default amd64 kernel', async () => {
    expect(built.exitCode, built.stderr).toBe(0);
    expect(kernels.length).toBeGreaterThanOrEqual(3);
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
    expect(report.kernels.map((k) => k.kernel).sort()).toEqual([...kernels].sort());
    for (const row of report.kernels) {
      expect(row.verdict, row.kernel).toBe('built');
      expect(row.load, row.kernel).toMatchObject({ verdict: 'loaded', secureBoot: true, lockdown: 'integrity' });
      const console_ = await readFile(path.join(out, row.load?.log ?? 'missing'), 'utf8');
      expect(console_).toMatch(/integrity: Loaded X\.509 cert 'kfarm sb token/);
      expect(console_).toMatch(/hello: hello from kfarm/);
    }
    expect(built.stderr).toContain('as a MOK');
  });
});
