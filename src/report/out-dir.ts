import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { KfarmError } from '../errors/kfarm-error.js';
import { fromSystemError } from '../errors/system-error.js';
import { insideDir } from '../util/inside-dir.js';
import { makeDirs } from '../util/make-dir.js';
import type { WrittenFile } from '../util/write-atomic.js';
import { commitStaging, holdStaging, releaseStaging, settleLeftovers, STAGING_PREFIX, type CommitOp } from './out-dir-commit.js';
import { checksumsText, REPORT_FILES, SUMS_FILE } from './out-dir-checksums.js';
import { renderViews } from './out-dir-views.js';
import { readReport } from './read-report.js';
import type { BuildReport } from './report.js';

/**
 * How a reader sees an out dir: `dir` names it (in messages), `locate` says where a file of it
 * is now. For a command that is writing it (OutDirStage), that is the file this command staged
 * when there is one, else the committed one; for a plain reader, the committed one.
 */
export interface OutDirView {
  readonly dir: string;
  locate(rel: string): string;
}

/** `rel` ('/'-separated, relative to `root`), refused when it would lead out of it */
const at = (root: string, rel: string) => insideDir(root, ...rel.split('/'));

/** The out dir as it is on disk, for commands that only read it. */
export function committedView(outDir: string): OutDirView {
  const dir = path.resolve(outDir);
  return { dir, locate: (rel) => at(dir, rel) };
}

/**
 * The one writer of an out dir. A command opens one stage, writes every file it makes into it
 * (tarballs, logs, packages, the reports: nothing in the out dir itself changes), reads the out
 * dir through it (the staged view), and commits once at the end: every staged file is renamed
 * into place, the reports after the files they name, and SHA256SUMS last, computed once from the
 * final report and checked against it. A command that fails or is interrupted before `commit`
 * discards the stage and leaves the out dir byte for byte as it found it; a stage left by a
 * killed process is cleaned (or, killed mid-swap, finished) by the next command (out-dir-commit.ts).
 * Files the report does not name (earlier builds' tarballs, others' files) are neither listed
 * nor touched, unless this command removes them by name (`remove`).
 */
export class OutDirStage implements OutDirView {
  /** staged paths (relative to the out dir): true for a directory replaced whole */
  private readonly puts = new Map<string, boolean>();
  private readonly removes = new Set<string>();
  private report: BuildReport | undefined;
  /** `--junit <file>`: junit.xml copied there at commit */
  private junitFile: string | undefined;
  private state: 'open' | 'committing' | 'committed' | 'discarded' = 'open';

  private constructor(
    readonly dir: string,
    /** `<dir>/.kfarm-staging-<pid>-<random>`: on the out dir's file system, so commit is renames */
    readonly staging: string,
  ) {}

  /** A new stage in `outDir` (which must exist), after settling what killed runs left there. */
  static async open(outDir: string): Promise<OutDirStage> {
    const dir = path.resolve(outDir);
    await settleLeftovers(dir);
    try {
      const staging = await mkdtemp(path.join(dir, `${STAGING_PREFIX}${process.pid}-`));
      holdStaging(staging);
      await mkdir(path.join(staging, 'files'));
      return new OutDirStage(dir, staging);
    } catch (err) {
      throw (
        fromSystemError(err, dir) ??
        new KfarmError('BAD_OPTION', `cannot write to the out dir ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
          context: { outDir: dir },
          hint: 'Pass an out dir kfarm can write to.',
          cause: err,
        })
      );
    }
  }

  private get files(): string {
    return path.join(this.staging, 'files');
  }

  /** the staged path or directory that covers `rel`, if this command staged or removed one */
  private stagedCover(rel: string): string | undefined {
    const parts = rel.split('/');
    for (let i = parts.length; i > 0; i--) {
      const p = parts.slice(0, i).join('/');
      if (this.puts.has(p) || this.removes.has(p)) return p;
    }
    return undefined;
  }

  locate(rel: string): string {
    // a path this command removed is looked up in the stage, where it is not: ENOENT, as it will be
    return at(this.stagedCover(rel) === undefined ? this.dir : this.files, rel);
  }

  /** the root `rel` is read below now (log excerpts check that a log stays inside it) */
  private rootOf(rel: string): string {
    return this.stagedCover(rel) === undefined ? this.dir : this.files;
  }

  private checkOpen(): void {
    if (this.state !== 'open') throw new Error(`the out dir stage of ${this.dir} is ${this.state}`); // a bug
  }

  /** Where to write `rel` (a file) for this command; its parent is made. */
  async fileTarget(rel: string): Promise<string> {
    this.checkOpen();
    const target = at(this.files, rel);
    await this.mapped(rel, () => makeDirs(path.dirname(target)));
    this.removes.delete(rel);
    this.puts.set(rel, this.puts.get(rel) ?? false);
    return target;
  }

  /** An empty directory that replaces `rel` whole at commit (a format's packages: no stale one survives a rerun). */
  async dirTarget(rel: string): Promise<string> {
    this.checkOpen();
    const target = at(this.files, rel);
    await rm(target, { recursive: true, force: true });
    await this.mapped(rel, () => makeDirs(target));
    this.removes.delete(rel);
    this.puts.set(rel, true);
    return target;
  }

  /** `rel` written by `write` into the stage; a full disk is named after the out dir's file, not the stage's. */
  async stageWith<T>(rel: string, write: (target: string) => Promise<T>): Promise<T> {
    const target = await this.fileTarget(rel);
    return this.mapped(rel, () => write(target));
  }

  /** `rel` staged with these bytes; the written file is named by its place in the out dir. */
  async stageFile(rel: string, data: Buffer): Promise<WrittenFile> {
    await this.stageWith(rel, (target) => writeFile(target, data));
    return { path: at(this.dir, rel), sha256: createHash('sha256').update(data).digest('hex'), size: data.length };
  }

  /** `rel` (a file or directory) gone at commit, and from this command's view now. */
  async remove(rel: string): Promise<void> {
    this.checkOpen();
    await rm(at(this.files, rel), { recursive: true, force: true });
    this.puts.delete(rel);
    this.removes.add(rel);
  }

  /** report.json as this command sees it: staged, else committed; schema-checked (read-report.ts). */
  readReport(): Promise<BuildReport> {
    return readReport(this);
  }

  /**
   * report.json, junit.xml and report.html of this report, staged (each later call replaces
   * them); `junit`: the JUnit XML also copied to that file at commit.
   */
  async stageReports(report: BuildReport, options: { junit?: string } = {}): Promise<void> {
    const views = await renderViews(report, (rel) => this.rootOf(rel));
    for (const name of REPORT_FILES) await this.stageFile(name, Buffer.from(views[name]));
    this.report = report;
    if (options.junit) this.junitFile = path.resolve(options.junit);
  }

  /**
   * The one swap: --junit's copy first (a path that cannot be written fails the command with
   * the out dir untouched), then SHA256SUMS of the final report, hashed from the staged view and
   * checked against the report (a deliverable that does not match fails it, untouched too), then
   * every move (out-dir-commit.ts), SHA256SUMS's last. `report`: the report SHA256SUMS is for
   * when this command staged none (default: the staged one, else report.json as it is).
   */
  async commit(options: { report?: BuildReport } = {}): Promise<void> {
    this.checkOpen();
    const report = options.report ?? this.report ?? (await readReport(this));
    if (this.junitFile) await this.copyJunit(this.junitFile);
    await this.stageFile(SUMS_FILE, Buffer.from(await checksumsText(this.dir, report, (rel) => this.locate(rel))));
    // the files first, then the views before the model they render, SHA256SUMS last (a stable sort keeps the rest in order)
    const rank = (rel: string) => (rel === SUMS_FILE ? 100 : rel === 'report.json' ? 12 : rel === 'junit.xml' ? 11 : rel === 'report.html' ? 10 : 0);
    const puts = [...this.puts].sort(([a], [b]) => rank(a) - rank(b));
    const ops: CommitOp[] = [...[...this.removes].map((remove) => ({ remove })), ...puts.map(([put, dir]) => (dir ? { put, dir } : { put }))];
    this.state = 'committing';
    await commitStaging(this.dir, this.staging, ops);
    this.state = 'committed';
  }

  /** Drops everything staged: the out dir stays as it was. A no-op after commit (so `finally` may always call it). */
  async discard(): Promise<void> {
    // a swap that started is finished, never undone half-way: its commit.json is for the next command to complete
    if (this.state !== 'open') return;
    this.state = 'discarded';
    await rm(this.staging, { recursive: true, force: true });
    releaseStaging(this.staging);
  }

  private async copyJunit(file: string): Promise<void> {
    try {
      const text = await readFile(this.locate('junit.xml'));
      await makeDirs(path.dirname(file)); // not mkdir's recursive: it spins forever below /proc
      await writeFile(file, text);
    } catch (err) {
      throw new KfarmError('BAD_OPTION', `cannot write the JUnit report to ${file}: ${(err as Error).message}`, {
        context: { file },
        hint: 'Give --junit a file path in a directory you can write to; the out dir has junit.xml either way.',
        cause: err,
      });
    }
  }

  private async mapped<T>(rel: string, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (err) {
      // a full disk is the environment (exit 3), said with the out dir's file it hit
      throw fromSystemError(err, at(this.dir, rel)) ?? err;
    }
  }
}

/** Runs `work` on a fresh stage of `outDir` and commits it; discards it when `work` (or the commit's checks) fails. */
export async function withOutDirStage<T>(outDir: string, work: (stage: OutDirStage) => Promise<T>): Promise<T> {
  const stage = await OutDirStage.open(outDir);
  try {
    const result = await work(stage);
    await stage.commit();
    return result;
  } finally {
    await stage.discard();
  }
}
