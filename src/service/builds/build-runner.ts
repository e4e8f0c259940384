import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import { buildOptions } from '../../config/build-options.js';
import { defaultConcurrency } from '../../config/concurrency.js';
import type { Env } from '../../config/env.js';
import { runBuild } from '../../coordinator/build.js';
import { verifyOutDir } from '../../coordinator/verify-out-dir.js';
import type { BuildEvent } from '../../coordinator/build-types.js';
import { KfarmError, describeError, type ErrorCode } from '../../errors/kfarm-error.js';
import type { ContainerRuntime } from '../../executor/runtime.js';
import { parseFormats } from '../../packaging/pack-out-dir.js';
import { makeDirs } from '../../util/make-dir.js';
import type { BuildRow, BuildTrigger, FarmDb } from '../farm-db.js';
import { buildDir, type ServicePaths } from '../service-paths.js';
import { unpackSource } from '../source-upload.js';
import { BuildFeed } from './build-feed.js';
import { resultRows } from './result-rows.js';
import { headersChangelog } from '../regressions/headers-changelog.js';
import { REPORT_CHANGELOG_LIMITS, reportRegressions } from '../findings/report-regressions.js';
import type { BuildReport, RegressionReport } from '../../report/report.js';
import type { OutDirStage } from '../../report/out-dir.js';

export interface BuildRunnerDeps {
  db: FarmDb;
  env: Env;
  runtime: ContainerRuntime;
  logger: Logger;
  paths: ServicePaths;
  /** the CLI's exit status of an error code (kept there; handed in so the service does not import the CLI) */
  exitCodeFor: (code: ErrorCode) => number;
  /** builds at once per build in local mode (workers in this process) */
  concurrency?: number;
  /** called when a build ended, after its results are recorded (notifications hook here) */
  onFinished?: (build: BuildRow) => void;
  /**
   * Publishes a registered module's build (its committed out dir) to the farm's repositories
   * (serve's --apt/--dnf/--oci); one-off sources (--farm) are never published. A failure is the
   * farm's, said in the build's feed and log: the build's own verdicts stand.
   */
  publish?: (build: BuildRow, outDir: string) => Promise<void>;
  /** the farm's signing key (serve's --sign-key/--sign-cert): builds of modules registered with sign=true are signed with it */
  signing?: { keyPath: string; certPath: string; pin?: string };
}

export interface SubmitRequest {
  module?: string;
  sourceSha256: string;
  kernels: string;
  formats: string[];
  trigger: BuildTrigger;
  verify?: 'load';
}

/**
 * Runs the service's builds through the coordinator's runBuild, one at a time (a build already
 * fans its kernels out over every worker; two at once would only share them), in the order
 * they came. The database row is the truth: a build is `queued` until it starts, `running`
 * while it runs, and a restart of the service (resume()) runs every queued or running build
 * again from its stored source: the result store answers the kernels that had finished, so
 * nothing finished is built twice, and the cells in flight are built once more, once.
 */
export class BuildRunner {
  private readonly feeds = new Map<string, BuildFeed>();
  private readonly pending: string[] = [];
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();

  constructor(private readonly deps: BuildRunnerDeps) {}

  /** whether builds can be signed here (the farm was started with a signing key) */
  canSign(): boolean {
    return this.deps.signing !== undefined;
  }

  /** a bad format is the submitter's error, said when submitted (400), not a failed build later */
  checkFormats(formats: readonly string[]): void {
    if (formats.length > 0) parseFormats(formats.join(','));
  }

  submit(request: SubmitRequest): BuildRow {
    this.checkFormats(request.formats);
    const row = this.deps.db.builds.create({
      ...(request.module ? { module: request.module } : {}),
      sourceSha256: request.sourceSha256,
      kernels: request.kernels,
      formats: request.formats,
      trigger: request.trigger,
      ...(request.verify ? { verify: request.verify } : {}),
    });
    this.enqueue(row.id);
    return row;
  }

  /** every build a killed service left queued or running, oldest first */
  resume(): number {
    const unfinished = this.deps.db.builds.unfinished().sort((a, b) => (a.id < b.id ? -1 : 1));
    for (const b of unfinished) this.enqueue(b.id);
    return unfinished.length;
  }

  feed(id: string): BuildFeed | undefined {
    return this.feeds.get(id);
  }

  /** stops taking builds and interrupts the one running (its row stays `running`: the next start resumes it) */
  async close(): Promise<void> {
    this.pending.length = 0;
    this.abort.abort();
    await this.running?.catch(() => undefined);
  }

  private enqueue(id: string): void {
    if (!this.feeds.has(id)) this.feeds.set(id, new BuildFeed());
    this.pending.push(id);
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  private async drain(): Promise<void> {
    for (let id = this.pending.shift(); id !== undefined && !this.abort.signal.aborted; id = this.pending.shift()) {
      await this.run(id);
    }
  }

  private async run(id: string): Promise<void> {
    const { db, logger } = this.deps;
    const row = db.builds.get(id);
    const feed = this.feeds.get(id) ?? new BuildFeed();
    this.feeds.set(id, feed);
    if (!row || (row.state !== 'queued' && row.state !== 'running')) return;
    const log = logger.child({ build: id });
    const where = buildDir(this.deps.paths, id);
    db.builds.update(id, { state: 'running', startedAt: new Date().toISOString() });
    feed.push('state', { state: 'running' });
    try {
      // the source is unpacked afresh each time: a resumed build may find a half-written one
      await rm(where.src, { recursive: true, force: true });
      await makeDirs(where.dir);
      await unpackSource(this.deps.paths, row.sourceSha256, where.src);
      const signing = this.signingFor(row);
      const outcome = await runBuild(
        {
          sourceDirs: [where.src],
          kernels: row.kernels,
          outDir: where.out,
          options: buildOptions({}),
          concurrency: this.deps.concurrency ?? defaultConcurrency(),
          formats: row.formats.length > 0 ? parseFormats(row.formats.join(',')) : [],
          noCache: false,
          ...(signing ? { signing } : {}),
        },
        { env: this.deps.env, runtime: this.deps.runtime, logger: log, signal: this.abort.signal, onEvent: (e: BuildEvent) => feed.push(e.type, e) },
      );
      if ('nothingNew' in outcome) {
        this.finish(id, feed, { state: 'done', exitCode: 0, summary: { built: 0, failed: 0, excluded: 0 } });
        return;
      }
      let { report } = outcome;
      try {
        if (row.verify === 'load') {
          // as kfarm build --verify load: the load results join the build's staged outputs, one commit
          feed.push('note', { type: 'note', text: 'booting each built kernel to load the modules (--verify load)' });
          report = await verifyOutDir(where.out, {
            stage: outcome.output.stage,
            env: this.deps.env,
            accel: 'auto',
            cmdline: '',
            timeoutSec: 300,
            stateDir: this.deps.env.stateDir,
            runtime: this.deps.runtime,
            logger: log,
            say: (line) => feed.push('note', { type: 'note', text: line }),
            signal: this.abort.signal,
          });
        }
        report = await this.withRegressions(id, report, outcome.output.stage, log);
        await outcome.output.commit();
      } finally {
        await outcome.output.discard();
      }
      db.results.record(resultRows(id, report, new Date().toISOString()));
      if (this.deps.publish && row.module && report.summary.built > 0) {
        try {
          await this.deps.publish(row, where.out);
          feed.push('publish', { ok: true });
        } catch (err) {
          log.error({ err: describeError(err) }, 'publishing the build failed');
          feed.push('publish', { ok: false, error: describeError(err) });
        }
      }
      const loadFailed = report.kernels.some((k) => k.load?.verdict === 'load-failed');
      this.finish(id, feed, { state: 'done', exitCode: report.summary.failed > 0 || loadFailed ? 1 : 0, summary: report.summary });
    } catch (err) {
      if (this.abort.signal.aborted) {
        log.warn({ err: describeError(err) }, 'build interrupted by the service stopping; it resumes at the next start');
        return;
      }
      const code = err instanceof KfarmError ? err.code : undefined;
      log.error({ err: describeError(err) }, 'build failed');
      this.finish(id, feed, {
        state: 'failed',
        exitCode: code ? this.deps.exitCodeFor(code) : 4,
        error: `${describeError(err)}${err instanceof KfarmError && err.hint ? ` (${err.hint})` : ''}`,
      });
    }
  }

  /**
   * The final report with what broke where, and since when (findings/report-regressions.ts),
   * restaged before the one commit so report.json, report.html, junit.xml and SHA256SUMS agree.
   * What cannot be worked out (the database unreadable) is logged and the report stays as built:
   * the build's own verdicts never wait on its history.
   */
  private async withRegressions(id: string, report: BuildReport, stage: OutDirStage, log: Logger): Promise<BuildReport> {
    const { db, runtime } = this.deps;
    let regressions: RegressionReport[];
    try {
      const rows = resultRows(id, report, new Date().toISOString());
      const before = [...new Set(rows.map((r) => r.module))].flatMap((m) => db.results.history(m));
      const versions = new Map(db.kernels.list().map((k) => [k.kernel, k.version]));
      regressions = await reportRegressions(before, rows, {
        readChangelog: (request) => headersChangelog(runtime, request, REPORT_CHANGELOG_LIMITS),
        headersVersion: (kernel) => versions.get(kernel),
      });
    } catch (err) {
      log.warn({ err: describeError(err) }, "could not work out the build's regression windows: its report has none");
      return report;
    }
    if (regressions.length === 0) return report;
    const withThem: BuildReport = { ...report, regressions };
    // not caught: a stage that cannot be written (a full disk) fails the build, as any of its outputs would
    await stage.stageReports(withThem);
    return withThem;
  }

  /** a registered module's builds are signed when its settings say so; a farm started without the key then fails them, saying why */
  private signingFor(row: BuildRow): BuildRunnerDeps['signing'] {
    const wants = row.module !== undefined && this.deps.db.modules.get(row.module)?.settings.sign === true;
    if (!wants) return undefined;
    if (!this.deps.signing) {
      throw new KfarmError('BAD_OPTION', `module ${row.module ?? ''} is registered with sign=true, and this farm was started without a signing key`, {
        context: { module: row.module },
        hint: 'Restart kfarm serve with --sign-key and --sign-cert, or register the module again without sign=true.',
      });
    }
    return this.deps.signing;
  }

  private finish(id: string, feed: BuildFeed, patch: Pick<BuildRow, 'state'> & Partial<Pick<BuildRow, 'exitCode' | 'summary' | 'error'>>): void {
    const row = this.deps.db.builds.update(id, { ...patch, finishedAt: new Date().toISOString() });
    feed.push('end', { state: row.state, exitCode: row.exitCode, summary: row.summary, error: row.error });
    this.deps.onFinished?.(row);
  }
}
