import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BuildReport } from '../../src/report/report.js';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { listKfarmImages } from '../../src/images/catalog.js';
import { defaultKernels, example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';

const readReport = async (out: string) => JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
let kernels: string[];
let onlyNew: string;

beforeAll(async () => {
  // setup's default set: other tests sync many more kernels, which `new` would also build, so
  // each `new` here excludes them (`new` is a kernel term: with names it would be a union)
  kernels = (await defaultKernels()).split(',');
  const held = (await listKfarmImages(new DockerRuntime())).flatMap((i) => i.kernels);
  onlyNew = ['new', ...held.filter((k) => !kernels.includes(k)).map((k) => `!${k}`)].join(',');
});

describe('kfarm build --kernels new (the nightly: sync images, then build what is new)', () => {
  it('builds only the kernels earlier builds of the source did not cover, then says there is nothing new', async () => {
    const env = await isolatedEnv('new');
    const first = await tempDir('new-first');
    const older = kernels.filter((k) => k.startsWith('6.1.'));
    const newer = kernels.filter((k) => !k.startsWith('6.1.'));
    expect(older.length).toBeGreaterThan(0);
    expect(newer.length).toBeGreaterThan(0);

    const a = await kfarm(['build', example('hello'), '--out', first, '--kernels', older.join(',')], env);
    expect(a.exitCode, a.stderr).toBe(0);
    expect((await readReport(first)).kernels.map((k) => k.kernel).sort()).toEqual([...older].sort());

    // the kernels held now that the 6.1 build did not cover: here, as if 6.12 had just been synced
    const second = await tempDir('new-second');
    const b = await kfarm(['build', example('hello'), '--out', second, '--kernels', onlyNew], env);
    expect(b.exitCode, b.stderr).toBe(0);
    expect((await readReport(second)).kernels.map((k) => k.kernel).sort()).toEqual([...newer].sort());

    const third = await tempDir('new-third');
    const c = await kfarm(['build', example('hello'), '--out', third, '--kernels', onlyNew], env);
    expect(c.exitCode, c.stderr).toBe(0);
    expect(c.stdout).toContain('no new kernels');
    // nothing ran, and an earlier report in --out is not replaced by an empty one
    await expect(stat(path.join(third, 'report.json'))).rejects.toThrow();
  });

  it('a kernel that failed stays new: the next `new` build tries it again', async () => {
    const env = await isolatedEnv('new-failed');
    const out = await tempDir('new-failed');
    const fixture = path.join(example('hello'), '..', '..', 'test', 'fixtures', 'modules', 'fails-on-612');
    const a = await kfarm(['build', fixture, '--out', out], env);
    expect(a.exitCode, a.stderr).toBe(1);
    const b = await kfarm(['build', fixture, '--out', out, '--kernels', onlyNew], env);
    expect(b.exitCode, b.stderr).toBe(1);
    const report = await readReport(out);
    expect(report.kernels.map((k) => k.kernel)).toEqual(kernels.filter((k) => k.startsWith('6.12.')));
  });
});
