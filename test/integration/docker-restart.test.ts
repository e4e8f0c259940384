import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import type { BuildReport } from '../../src/report/report.js';
import { restartDockerEngine } from '../helpers/docker-engine.js';
import { fixture, isolatedEnv, kfarmProcess, tempDir } from '../helpers/kfarm-cli.js';

/** The Docker engine restarts in the middle of a build: the farm's problem, not the module's. */
describe('a Docker engine restart mid-build', () => {
  it('is retried: every kernel still builds, nothing is left behind', async () => {
    const runtime = new DockerRuntime();
    const out = await tempDir('engine-restart');
    // 6.12 takes 8 s longer, so at least that build is running when the engine goes away.
    const build = kfarmProcess(['build', fixture('slow-on-612'), '--out', out, '--concurrency', '3'], await isolatedEnv('engine-restart'));
    let running = false;
    for (let i = 0; i < 240 && !running; i++) {
      running = (await runtime.listContainers({ 'kfarm.kernel': '' }).catch(() => [])).some((c) => c.running);
      if (!running) await new Promise((r) => setTimeout(r, 250));
    }
    expect(running).toBe(true);
    await restartDockerEngine();
    const ended = await build;
    expect(ended.exitCode, String(ended.all)).toBe(0);
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
    expect(report.kernels.every((k) => k.verdict === 'built')).toBe(true);
    expect(Math.max(...report.kernels.map((k) => k.attempt))).toBeGreaterThan(1); // it was retried
    // The containers the restart stopped are removed once the engine is back.
    let left = await runtime.listContainers({ 'kfarm.build': '' });
    for (let i = 0; i < 20 && left.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      left = await runtime.listContainers({ 'kfarm.build': '' });
    }
    expect(left).toEqual([]);
  }, 300_000);
});
