import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { env } from '../../config/env.js';
import type { BuildEvent } from '../../coordinator/build-types.js';
import { KfarmError } from '../../errors/kfarm-error.js';
import { extractTar } from '../../executor/archive.js';
import { kernelRecordSchema } from '../../job/job-payload.js';
import { readReport } from '../../report/read-report.js';
import { withOutDirStage } from '../../report/out-dir.js';
import type { BuildReport } from '../../report/report.js';
import { debianArchOf } from '../../report/release-arch.js';
import { farmClient, followEvents, type FarmClient, type SseEvent } from '../../service/client/farm-client.js';
import type { BuildRow } from '../../service/farm-db.js';
import { packSource } from '../../source/source-archive.js';
import { makeDirs } from '../../util/make-dir.js';
import { buildProgress } from '../build-progress.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../exit-codes.js';
import type { BuildCliOptions } from '../option-types.js';
import { errorText, formatDuration, reportTable, shown } from '../render.js';

/** What the farm decides for itself, so these are refused with --farm rather than silently dropped. */
const LOCAL_ONLY: Array<[keyof BuildCliOptions, string]> = [
  ['signKey', "--sign-key (the key stays on this machine: sign the out dir here with kfarm sign, or register the module with the farm's signing)"],
  ['signCert', '--sign-cert'],
  ['verify', '--verify'],
  ['dkmsOverrides', '--dkms-overrides'],
  ['apt', '--apt'],
  ['dnf', '--dnf'],
  ['oci', '--oci'],
  ['repoKey', '--repo-key'],
  ['concurrency', '--concurrency'],
  ['cacheSize', '--cache-size'],
];

/** the farm's out dir can be large (every kernel's packages): capped as a build's outputs are */
const OUT_LIMITS = { maxBytes: 8 * 1024 * 1024 * 1024, maxEntries: 200_000, allowSymlinks: false };

/**
 * `kfarm build <src> --farm <url>`: the source goes to a kfarm serve farm, its progress comes
 * back as the same live status and lines a local build prints, and its out dir (tarballs,
 * packages, report.json, junit.xml, report.html) is written to --out through the same staged
 * writer, after every file was checked against the farm's report (the SHA256SUMS commit check):
 * nothing the farm sends is trusted before that. The exit status is the local one.
 */
export async function buildOnFarm(ctx: CliContext, sourceDirs: string[], opts: BuildCliOptions): Promise<void> {
  if (sourceDirs.length !== 1)
    throw new KfarmError('BAD_OPTION', `kfarm build --farm takes one source dir (got ${sourceDirs.length})`, { hint: 'Run one kfarm build --farm per module.' });
  const given = LOCAL_ONLY.filter(([k]) => opts[k] !== undefined).map(([, name]) => name);
  if (opts.directive.length > 0) given.push('--directive');
  if (!opts.cache) given.push('--no-cache');
  if (given.length > 0)
    throw new KfarmError('BAD_OPTION', `with --farm these are the farm's to decide: ${given.join('; ')}`, { hint: 'Drop them, or build locally without --farm.' });
  const token = await farmToken(opts.farmTokenFile);
  const client = farmClient(opts.farm ?? '', token);
  const dir = sourceDirs[0] ?? '.';
  const source = await packSource(dir, {
    exclude: [
      { path: opts.out, what: '--out dir' },
      { path: env.stateDir, what: 'state dir' },
    ],
  });
  const formats = opts.format === 'dkms-tarball' ? '' : opts.format;
  const query = new URLSearchParams({ ...(opts.kernels ? { kernels: opts.kernels } : {}), ...(formats ? { formats } : {}) });
  const build = await client.json<BuildRow>('POST', `/api/v1/builds/source?${query.toString()}`, { body: gzipSync(source.tar), contentType: 'application/gzip' });
  if (typeof build?.id !== 'string' || !/^b-[0-9]{14}-[0-9a-f]{6}$/.test(build.id))
    throw new KfarmError('COMMAND_FAILED', `the farm at ${client.url} answered a build submission without a build id`);
  ctx.progress(`kfarm: submitted to ${client.url} as build ${build.id}`);

  const live = ctx.live();
  const progress = buildProgress(live, live.tty);
  let end: { state?: string; exitCode?: number; error?: string } = {};
  try {
    await followEvents(
      client,
      `/api/v1/builds/${build.id}/events`,
      (e) => {
        if (e.type === 'end') end = endOf(e);
        else {
          const event = buildEventOf(e, dir);
          if (event) progress.onEvent(event);
        }
      },
      { signal: ctx.signal },
    );
  } finally {
    progress.done();
  }
  const report = await fetchOutDir(client, build.id, opts, dir);
  if (end.state !== 'done') {
    ctx.progress(errorText(`the farm's build ${build.id} failed: ${shown(end.error ?? 'no reason given', 2000)}`, undefined).trimEnd());
    if (report) ctx.progress(`report: ${opts.out}/report.json`);
    ctx.setExitCode(typeof end.exitCode === 'number' && [2, 3, 4].includes(end.exitCode) ? end.exitCode : EXIT.environment);
    return;
  }
  if (!report) throw new KfarmError('COMMAND_FAILED', `the farm's build ${build.id} ended without an out dir`);
  ctx.out(reportTable(report, opts.table));
  for (const line of regressionLines(report)) ctx.out(line);
  for (const p of report.packages ?? []) ctx.out(`${p.format.padEnd(12)} ${opts.out}/${p.path}`);
  ctx.out(
    `report: ${opts.out}/report.json, ${opts.out}/report.html, ${opts.out}/junit.xml${opts.junit ? ` (and ${opts.junit})` : ''} (built on ${client.url} in ${formatDuration(report.durationMs)})`,
  );
  ctx.setExitCode(report.summary.failed > 0 ? EXIT.kernelsFailed : EXIT.ok);
}

/**
 * Pure: the farm's regression windows of this build (report.json `regressions`, a farm's report
 * only), one line each with its first error under it: "regression: hello 1.0 debian-12/amd64
 * amd64 6.1 (build): builds on 6.1.0-56-amd64, fails since 6.1.0-57-amd64". The text came from
 * the farm: shown cleaned and capped.
 */
export function regressionLines(report: BuildReport): string[] {
  const word = { broken: 'regression', 'never-built': 'never built', fixed: 'fixed' } as const;
  return (report.regressions ?? []).flatMap((r) => [
    shown(`${word[r.state] ?? r.state}: ${r.module} ${r.version} ${r.release}/${debianArchOf(r.arch)} ${r.flavour} ${r.line} (${r.check}): ${r.sentence}`, 1000),
    ...(r.firstError ? [`  ${shown(r.firstError.split('\n')[0] ?? '', 1000)}`] : []),
  ]);
}

async function farmToken(file: string | undefined): Promise<string> {
  const text = file
    ? await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new KfarmError('BAD_OPTION', `cannot read --farm-token-file ${file} (${err.code ?? err.message})`);
      })
    : process.env.KFARM_FARM_TOKEN;
  const token = text?.trim();
  if (!token)
    throw new KfarmError('BAD_OPTION', '--farm needs a token: set KFARM_FARM_TOKEN or give --farm-token-file', {
      hint: 'On the farm host: kfarm tokens create ci --scope submit (a token never goes on the command line).',
    });
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(token)) throw new KfarmError('BAD_OPTION', 'the farm token holds characters a kfarm token never has');
  return token;
}

/** the farm's events as the local progress takes them; a record that fails the record schema is dropped, not shown */
function buildEventOf(e: SseEvent, dir: string): BuildEvent | undefined {
  const d = e.data as Record<string, unknown> | undefined;
  if (!d || typeof d !== 'object') return undefined;
  switch (e.type) {
    case 'note':
    case 'warning':
      return typeof d.text === 'string' ? { type: e.type, text: d.text } : undefined;
    case 'plan':
      return Array.isArray(d.targets) ? { type: 'plan', source: dir, targets: d.targets as never, where: `the farm (${typeof d.where === 'string' ? d.where : '?'})` } : undefined;
    case 'kernel':
      return typeof d.kernel === 'string' && (d.state === 'queued' || d.state === 'running' || d.state === 'retrying')
        ? { type: 'kernel', kernel: d.kernel, state: d.state, ...(typeof d.detail === 'string' ? { detail: d.detail } : {}) }
        : undefined;
    case 'kernel-done': {
      const record = kernelRecordSchema.safeParse(d.record);
      return record.success && typeof d.kernel === 'string' ? { type: 'kernel-done', kernel: d.kernel, record: record.data, cached: d.cached === true } : undefined;
    }
    default:
      return undefined;
  }
}

function endOf(e: SseEvent): { state?: string; exitCode?: number; error?: string } {
  const d = (e.data ?? {}) as Record<string, unknown>;
  return {
    ...(typeof d.state === 'string' ? { state: d.state } : {}),
    ...(typeof d.exitCode === 'number' ? { exitCode: d.exitCode } : {}),
    ...(typeof d.error === 'string' ? { error: d.error } : {}),
  };
}

/**
 * The farm's out dir into --out, or undefined when the build left none (refused before it
 * planned). Entries are checked as any archive from elsewhere (no links, no `..`, caps), then
 * staged; SHA256SUMS is made here from the report and the staged files, and a file that does not
 * match the report's sha256 fails the commit with --out untouched.
 */
async function fetchOutDir(client: FarmClient, id: string, opts: BuildCliOptions, dir: string): Promise<BuildReport | undefined> {
  const res = await client.request('GET', `/api/v1/builds/${id}/out.tar`);
  if (res.status === 404) return undefined;
  if (!res.ok) throw new KfarmError('COMMAND_FAILED', `the farm's out dir of build ${id} could not be fetched: HTTP ${res.status}`);
  const entries = await extractTar(Buffer.from(await res.arrayBuffer()), OUT_LIMITS, `the farm's out dir of build ${id}`);
  await makeDirs(opts.out);
  return withOutDirStage(opts.out, async (stage) => {
    for (const e of entries) if (e.type === 'file' && e.path !== 'SHA256SUMS') await stage.stageFile(e.path, e.data ?? Buffer.alloc(0));
    const farmReport = await readReport(stage);
    // the report names this machine's source dir, as a local build's does (the farm's is its scratch copy)
    const here = path.resolve(dir);
    const report: BuildReport = {
      ...farmReport,
      source: { ...farmReport.source, dir: here },
      ...(farmReport.modules ? { modules: farmReport.modules.map((m) => ({ ...m, source: { ...m.source, dir: here } })) } : {}),
    };
    await stage.stageReports(report, opts.junit ? { junit: opts.junit } : {});
    return report;
  });
}
