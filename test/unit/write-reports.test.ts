import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KfarmError } from '../../src/errors/kfarm-error.js';
import { EXCERPT_LIMITS, tailLines } from '../../src/report/log-excerpt.js';
import { writeReports } from '../../src/report/write-reports.js';
import { row, sampleReport } from '../fixtures/junit/sample-report.js';

/**
 * writeReports is the one place every view of a report is written: report.json, junit.xml
 * and report.html in the out dir, and --junit's copy. The JUnit failures carry the tail of the
 * failed kernel's log, read from the out dir only: a report read back from disk cannot make it
 * read a file elsewhere.
 */
async function outDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kfarm-write-reports-'));
  await mkdir(path.join(dir, 'logs'));
  return dir;
}

describe('writeReports', () => {
  it("writes report.json, junit.xml and report.html, and the same JUnit to --junit's path", async () => {
    const out = await outDir();
    const extra = path.join(await mkdtemp(path.join(os.tmpdir(), 'kfarm-junit-extra-')), 'nested', 'kfarm.xml');
    const report = sampleReport();
    await writeReports(out, report, { junit: extra });
    expect(JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8'))).toEqual(report);
    const junit = await readFile(path.join(out, 'junit.xml'), 'utf8');
    expect(junit).toMatch(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites /);
    expect(await readFile(extra, 'utf8')).toBe(junit);
    expect(await readFile(path.join(out, 'report.html'), 'utf8')).toMatch(/^<!DOCTYPE html>/);
  });

  it("puts the last lines of a failed kernel's log in its failure, cleaned of escape sequences and capped", async () => {
    const out = await outDir();
    const lines = Array.from({ length: 5000 }, (_, i) => `line ${i} ${'x'.repeat(i === 4998 ? 5000 : 10)}`);
    lines[4999] = '\u001b[31mmake: *** [Makefile:4: hello.o] Error 1\u001b[0m';
    await writeFile(path.join(out, 'logs', 'k.log'), `${lines.join('\n')}\n\n`);
    const report = { ...sampleReport(), kernels: [row({ kernel: 'k', verdict: 'failed', reason: 'make-failed', firstError: 'e', log: 'logs/k.log' })] };
    await writeReports(out, report);
    const junit = await readFile(path.join(out, 'junit.xml'), 'utf8');
    const header = '--- last lines of logs/k.log ---\n';
    const excerpt = junit.slice(junit.indexOf(header) + header.length, junit.indexOf(']]></failure>'));
    const got = excerpt.split('\n');
    expect(got.length).toBe(EXCERPT_LIMITS.lines);
    expect(got.at(-1)).toBe('make: *** [Makefile:4: hello.o] Error 1');
    expect(got.at(-2)?.length).toBe(EXCERPT_LIMITS.lineChars);
    expect(got[0]).toBe(`line 4960 ${'x'.repeat(10)}`);
  });

  it('reads no log outside the out dir: not through `..`, an absolute path or a symlink', async () => {
    const out = await outDir();
    const secretDir = await mkdtemp(path.join(os.tmpdir(), 'kfarm-secret-'));
    await writeFile(path.join(secretDir, 'secret.log'), 'TOP-SECRET\n');
    await symlink(path.join(secretDir, 'secret.log'), path.join(out, 'logs', 'link.log'));
    const rel = path.relative(out, path.join(secretDir, 'secret.log'));
    const report = {
      ...sampleReport(),
      kernels: [
        row({ kernel: 'a', verdict: 'failed', reason: 'make-failed', log: rel }),
        row({ kernel: 'b', verdict: 'failed', reason: 'make-failed', log: path.join(secretDir, 'secret.log') }),
        row({ kernel: 'c', verdict: 'failed', reason: 'make-failed', log: 'logs/link.log' }),
        row({ kernel: 'd', verdict: 'built', load: { verdict: 'load-failed', reason: 'boot-failed', log: 'logs/link.log' } }),
      ],
    };
    await writeReports(out, report);
    const junit = await readFile(path.join(out, 'junit.xml'), 'utf8');
    expect(junit).not.toContain('TOP-SECRET');
    expect(junit).not.toContain('--- last lines of');
    expect(await readFile(path.join(out, 'report.html'), 'utf8')).not.toContain('TOP-SECRET');
  });

  it('says which --junit path it could not write, as a BAD_OPTION', async () => {
    const out = await outDir();
    await writeFile(path.join(out, 'a-file'), '');
    const err = await writeReports(out, sampleReport(), { junit: path.join(out, 'a-file', 'junit.xml') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KfarmError);
    expect((err as KfarmError).code).toBe('BAD_OPTION');
    expect((err as KfarmError).message).toContain(`cannot write the JUnit report to ${path.join(out, 'a-file', 'junit.xml')}`);
  });
});

describe('tailLines', () => {
  it('drops the partial first line of a tail read mid-file and trailing blank lines', () => {
    expect(tailLines('tial line\nb\nc\n\n \n', true)).toBe('b\nc');
    expect(tailLines('a\r\nb', false)).toBe('a\nb');
  });
});
