import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import { isKfarmError, type KfarmError } from '../../src/errors/kfarm-error.js';
import { parseReport, readReport } from '../../src/report/read-report.js';
import { sampleReport } from '../fixtures/junit/sample-report.js';

const refusal = (fn: () => unknown): KfarmError => {
  try {
    fn();
  } catch (err) {
    if (isKfarmError(err)) return err;
    throw err;
  }
  throw new Error('accepted');
};

describe('report.json is read through one schema-checked reader', () => {
  it('accepts what kfarm writes, and keeps fields it does not know', () => {
    const written = { ...sampleReport(), newerField: { x: 1 } };
    const read = parseReport(JSON.stringify(written), 'report.json');
    expect(read).toEqual(written);
  });

  it.each([
    ['cut short (a full disk)', JSON.stringify(sampleReport()).slice(0, 300), 'report.json is not valid JSON'],
    ['empty', '', 'report.json is not valid JSON'],
    ['not an object', '[1,2]', 'report.json is not a kfarm report: (top)'],
    ['another schema version', JSON.stringify({ ...sampleReport(), schemaVersion: 2 }), 'is not a kfarm report: schemaVersion'],
    ['kernels not a list', JSON.stringify({ ...sampleReport(), kernels: 'x' }), 'is not a kfarm report: kernels'],
    [
      'a row without its verdict',
      JSON.stringify({ ...sampleReport(), kernels: [{ ...sampleReport().kernels[0], verdict: undefined }] }),
      'is not a kfarm report: kernels.0.verdict',
    ],
    [
      'an artifact path leading out of the out dir',
      JSON.stringify({ ...sampleReport(), fullTarball: { path: '../../etc/passwd', sha256: 'a'.repeat(64), size: 1 } }),
      'fullTarball.path: not a path inside the out dir',
    ],
    [
      'an absolute package path',
      JSON.stringify({ ...sampleReport(), packages: [{ format: 'kmm', path: '/etc/shadow', sha256: 'a'.repeat(64), size: 1 }] }),
      'packages.0.path: not a path inside the out dir',
    ],
  ])('%s: bad input (exit 2) with what to do, never a SyntaxError or TypeError', (_, text, said) => {
    const err = refusal(() => parseReport(text, '/x/report.json'));
    expect(err.code).toBe('BAD_OPTION');
    expect(exitCodeFor(err.code)).toBe(2);
    expect(err.message).toContain(said);
    expect(err.hint).toMatch(/kfarm build/);
  });

  it('a missing report.json names the out dir', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kfarm-read-report-'));
    await expect(readReport(dir)).rejects.toMatchObject({ code: 'BAD_OPTION', message: `${dir} holds no report.json` });
    await writeFile(path.join(dir, 'report.json'), '{"schemaVersion":1,');
    await expect(readReport(dir)).rejects.toMatchObject({ code: 'BAD_OPTION', message: expect.stringContaining(`${dir}/report.json is not valid JSON`) });
  });
});
