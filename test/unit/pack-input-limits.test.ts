import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { readPackInputs } from '../../src/packaging/pack-input.js';
import type { BuildReport } from '../../src/report/report.js';
import { row, sampleReport } from '../fixtures/junit/sample-report.js';

describe("kfarm pack reads an out dir's tarballs within bounds", () => {
  it('a tarball far past what kfarm unpacks (3 GiB, sparse) is refused by its size, not read (it said "missing": readFile stops at 2 GiB)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kfarm-pack-big-'));
    const name = 'hello-1.0.0-kernel6.1.0-57-amd64-x86_64.dkms.tar.gz';
    await execa('truncate', ['-s', '3G', path.join(dir, name)]);
    const report: BuildReport = {
      ...sampleReport(),
      modules: undefined,
      kernels: [row({ kernel: '6.1.0-57-amd64', verdict: 'built', tarball: { path: name, sha256: 'a'.repeat(64), size: 3 * 1024 ** 3 } })],
    };
    await writeFile(path.join(dir, 'report.json'), JSON.stringify(report));
    await expect(readPackInputs(dir)).rejects.toMatchObject({ code: 'BAD_OPTION', message: `${dir}: ${name} is not a tarball kfarm wrote (${3 * 1024 ** 3} bytes)` });
  });
});
