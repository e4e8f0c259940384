import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import type { BuildReport } from '../../src/report/report.js';
import { VERIFY_LABEL } from '../../src/verify/boot-kernel.js';
import { debian12Kernels, example, fixture, isolatedEnv, kfarm, kfarmProcess, tempDir } from '../helpers/kfarm-cli.js';

/**
 * Ctrl-C of a load check (no REDIS_URL: the private Redis and this process's worker) ends its
 * boots with it. Before: the waits ignored the signal, the interrupted boots were retried until
 * they failed, the report was rewritten with worker-error rows and `kfarm verify` exited 0.
 */
const { k61 } = await debian12Kernels();
let env: Record<string, string>;
let hangOut: string;
let helloOut: string;

beforeAll(async () => {
  env = await isolatedEnv('verify-interrupt');
  hangOut = await tempDir('interrupt-hang');
  helloOut = await tempDir('interrupt-hello');
  const hang = await kfarm(['build', fixture('hangs-on-load'), '-k', k61, '-o', hangOut], env, 600_000);
  expect(hang.exitCode, hang.stderr).toBe(0);
  const hello = await kfarm(['build', example('hello'), '-k', k61, '-o', helloOut], env, 600_000);
  expect(hello.exitCode, hello.stderr).toBe(0);
}, 1_200_000);

describe('Ctrl-C of kfarm verify', () => {
  it('stops its boot at once (exit 130), leaves report.json as it was, and the next run on the state dir boots without waiting', async () => {
    const before = await readFile(path.join(hangOut, 'report.json'), 'utf8');
    const run = kfarmProcess(['verify', hangOut, '--accel', 'tcg', '--boot-timeout', '600'], env);
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`kfarm verify did not start its boot in 300 s:\n${stderr}`)), 300_000);
      run.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString('utf8');
        if (/verifying 1 built kernel/.test(stderr)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    // the kernel fetched and the guest up (the module then hangs for the 600 s the boot may take)
    await new Promise((r) => setTimeout(r, 20_000));
    const stopped = Date.now();
    run.kill('SIGINT');
    const result = await run;
    const ms = Date.now() - stopped;
    expect(result.exitCode, String(result.all)).toBe(130);
    expect(ms, String(result.all)).toBeLessThan(30_000);
    expect(await readFile(path.join(hangOut, 'report.json'), 'utf8')).toBe(before);
    console.log(`kfarm verify stopped ${ms} ms after SIGINT`);

    const started = Date.now();
    const next = await kfarm(['verify', helloOut], env, 300_000);
    expect(next.exitCode, next.stderr).toBe(0);
    const report = JSON.parse(await readFile(path.join(helloOut, 'report.json'), 'utf8')) as BuildReport;
    expect(report.kernels.find((k) => k.kernel === k61)?.load).toMatchObject({ verdict: 'loaded' });
    console.log(`the next kfarm verify on the same state dir: ${Date.now() - started} ms`);
  }, 1_200_000);
});

describe('kfarm verify killed with SIGKILL', () => {
  it('leaves a boot container the next run on the host removes (it would run on for the whole --boot-timeout), and that run is not held up', async () => {
    const runtime = new DockerRuntime();
    const boots = async () => runtime.listContainers({ [VERIFY_LABEL]: '1' });
    const earlier = new Set((await boots()).map((c) => c.id));
    const run = kfarmProcess(['verify', hangOut, '--accel', 'tcg', '--boot-timeout', '600'], env);
    // what the run said so far, for the message if no boot container shows up (run.all is a stream)
    let said = '';
    run.all?.on('data', (chunk: Buffer) => (said += chunk.toString()));
    let ours: string | undefined;
    for (let i = 0; i < 600 && !ours; i++) {
      await new Promise((r) => setTimeout(r, 500));
      ours = (await boots()).find((c) => c.running && !earlier.has(c.id))?.id;
    }
    expect(ours, said).toBeDefined();
    run.kill('SIGKILL');
    await run;

    const started = Date.now();
    const next = await kfarm(['verify', helloOut], env, 300_000);
    expect(next.exitCode, next.stderr).toBe(0);
    console.log(`the next kfarm verify after a SIGKILL: ${Date.now() - started} ms`);
    expect(
      (await boots()).find((c) => c.id === ours),
      "the killed run's boot container",
    ).toBeUndefined();
  }, 1_200_000);
});
