import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jobPriority } from '../../src/queue/job-priority.js';
import { compileUnits } from '../../src/source/compile-units.js';
import { packSource } from '../../src/source/source-archive.js';
import { example, tempDir } from '../helpers/kfarm-cli.js';

describe('compileUnits', () => {
  it('counts the .c and .S files, nothing else', () => {
    expect(compileUnits(['dkms.conf', 'Makefile', 'main.c', 'sub/util.c', 'sub/entry.S', 'hello.h', 'notes.c.orig', 'x.cc'])).toBe(3);
  });

  it('is at least 1, so a source whose Makefile generates its C still orders', () => {
    expect(compileUnits(['dkms.conf', 'Makefile'])).toBe(1);
  });

  it('is what packSource finds in a real tree (links and directories are not units)', async () => {
    const dir = await tempDir('compile-units');
    await mkdir(path.join(dir, 'src'));
    await writeFile(path.join(dir, 'dkms.conf'), 'PACKAGE_NAME=x\nPACKAGE_VERSION=1\nBUILT_MODULE_NAME[0]=x\nDEST_MODULE_LOCATION[0]=/extra\n');
    for (const f of ['a.c', 'src/b.c', 'src/c.S', 'src/d.h']) await writeFile(path.join(dir, f), '');
    await mkdir(path.join(dir, 'dir.c'));
    expect((await packSource(dir)).compileUnits).toBe(3);
    expect((await packSource(example('hello'))).compileUnits).toBe(1);
  });
});

describe('jobPriority', () => {
  it('gives more units a lower number (BullMQ runs lower numbers first)', () => {
    expect(jobPriority(24)).toBeLessThan(jobPriority(8));
    expect(jobPriority(8)).toBeLessThan(jobPriority(1));
  });

  it("stays inside BullMQ's range 1..2^21 and never 0 (no priority runs before every prioritized job)", () => {
    for (const units of [0, -3, 1, 1.7, 1e9, Number.NaN, Number.POSITIVE_INFINITY]) {
      const p = jobPriority(units);
      expect(Number.isInteger(p)).toBe(true);
      expect(p).toBeGreaterThanOrEqual(1);
      expect(p).toBeLessThanOrEqual(2 ** 21);
    }
  });
});
