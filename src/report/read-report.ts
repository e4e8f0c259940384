import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ARCH, KERNEL_RELEASE, MODULE_NAME, MODULE_VERSION, isValidLocation } from '../dkms/names.js';
import { MODULE_SUFFIXES } from '../dkms/driver-result.js';
import { KfarmError } from '../errors/kfarm-error.js';
import { REASON_NAMES, VERDICT_NAMES } from '../dkms/verdicts.js';
import type { BuildReport } from './report.js';

/**
 * The one reader of an out dir's report.json (`kfarm pack`, `kfarm verify`): the out dir is a
 * user's directory like any other input, so the file is parsed and checked against a schema of
 * the whole report before anything reads a field, and every way it can be wrong (missing, not
 * JSON, cut short by a full disk, edited by hand, another tool's) is bad input, exit 2, with
 * what to do. Names are checked by kfarm's rules (they become paths in packages and under
 * logs/), artifact paths must stay inside the out dir. Fields this kfarm does not know are
 * kept (passthrough), so a rewrite (`kfarm verify`) loses nothing a newer writer added.
 */
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const count = z.number().int().nonnegative();
const text = (max: number) => z.string().max(max);
const moduleName = z.string().regex(MODULE_NAME);
const moduleVersion = z.string().regex(MODULE_VERSION);
const fileName = z.string().regex(new RegExp(`^${MODULE_NAME.source.replace(/^\^|\$$/g, '')}(?:${MODULE_SUFFIXES.map((s) => s.replace(/\./g, '\\.')).join('|')})$`));
const location = text(1024).refine(
  (v) =>
    isValidLocation(
      v
        .split('/')
        .filter((p) => p !== '')
        .join('/'),
    ),
  'not a safe location',
);

/** A path relative to the out dir that stays inside it: plain segments, no `..`, not absolute. */
export function isInsidePath(p: string): boolean {
  return p !== '' && !p.startsWith('/') && p.split('/').every((s) => s !== '' && s !== '.' && s !== '..' && !/[\\\0]/.test(s));
}
const insidePath = text(1024).refine(isInsidePath, 'not a path inside the out dir');
const artifact = z.object({ path: insidePath, sha256, size: count }).passthrough();
const summary = z.object({ built: count, excluded: count, failed: count }).passthrough();
const source = z.object({ dir: text(4096), sha256 }).passthrough();

const loadReport = z
  .object({
    verdict: z.enum(['loaded', 'load-failed', 'not-verified']),
    reason: text(256).optional(),
    firstError: text(4096).optional(),
    accel: z.enum(['kvm', 'tcg']).optional(),
    bootMs: z.number().nonnegative().optional(),
    loadMs: z.number().nonnegative().optional(),
    log: insidePath.optional(),
  })
  .passthrough();

const kernelReport = z
  .object({
    module: moduleName.optional(),
    version: moduleVersion.optional(),
    kernel: z.string().regex(KERNEL_RELEASE),
    arch: z.string().regex(ARCH),
    release: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/),
    debianArch: z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/),
    image: text(512),
    verdict: z.enum(VERDICT_NAMES),
    reason: z.enum(REASON_NAMES).optional(),
    message: text(16_384).optional(),
    firstError: text(4096).optional(),
    durationMs: z.number().nonnegative(),
    cached: z.boolean(),
    worker: text(512),
    attempt: count,
    log: text(4096),
    logTruncated: z.boolean(),
    modules: z
      .array(z.object({ name: moduleName, builtName: moduleName, file: fileName, sha256, size: count, destination: text(4096), destModuleLocation: location }).passthrough())
      .max(256),
    tarball: artifact.optional(),
    load: loadReport.optional(),
  })
  .passthrough();

const kernelName = z.string().regex(KERNEL_RELEASE);
const changelogEntry = z
  .object({
    package: text(4096),
    version: text(4096),
    distribution: text(4096),
    urgency: text(4096),
    body: z.array(text(4096)).max(100_000),
    maintainer: text(4096).optional(),
    date: text(4096).optional(),
  })
  .passthrough();
const headersVersion = z.object({ kernel: kernelName, version: text(256).optional() }).passthrough();
const regression = z
  .object({
    module: moduleName,
    version: moduleVersion,
    release: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/),
    arch: z.string().regex(ARCH),
    flavour: text(128),
    line: text(64),
    check: z.enum(['build', 'load']),
    state: z.enum(['broken', 'never-built', 'fixed']),
    sentence: text(4096),
    lastGood: kernelName.optional(),
    firstBad: kernelName.optional(),
    lastBad: kernelName.optional(),
    fixedIn: kernelName.optional(),
    firstError: text(4096).optional(),
    reason: text(256).optional(),
    buildId: text(128).optional(),
    since: text(64),
    changelog: z
      .object({
        lastGood: headersVersion.optional(),
        firstBad: headersVersion,
        source: z
          .object({ image: text(512), path: text(4096) })
          .passthrough()
          .optional(),
        entries: z.array(changelogEntry).max(10_000),
        omittedEntries: count,
        omittedLines: count,
        complete: z.boolean(),
        note: text(16_384).optional(),
      })
      .passthrough()
      .optional(),
  })
  .passthrough();

export const reportSchema = z
  .object({
    schemaVersion: z.literal(1),
    tool: z.object({ name: z.literal('kfarm'), version: text(128) }).passthrough(),
    module: moduleName,
    version: moduleVersion,
    source,
    startedAt: text(64),
    finishedAt: text(64),
    durationMs: z.number().nonnegative(),
    summary,
    kernels: z.array(kernelReport).max(10_000),
    fullTarball: artifact.optional(),
    warnings: z.array(text(16_384)).max(10_000),
    modules: z
      .array(z.object({ name: moduleName, version: moduleVersion, source, summary, fullTarball: artifact.optional() }).passthrough())
      .max(1000)
      .optional(),
    packages: z
      .array(artifact.extend({ format: z.string().regex(/^[a-z0-9-]{1,32}$/) }))
      .max(100_000)
      .optional(),
    regressions: z.array(regression).max(10_000).optional(),
  })
  .passthrough();

/** the checked report is a BuildReport: the compiler refuses a schema that drifts from report.ts */
const checkedIsReport = (r: z.infer<typeof reportSchema>): BuildReport => r;
void checkedIsReport;

/** far past a real one (10,000 kernels of a few KB each): a larger file is not read into memory */
const MAX_REPORT_BYTES = 256 * 1024 * 1024;

/** Pure: report.json's text → the checked report, or a KfarmError saying what is wrong (`file` names it in the message). */
export function parseReport(textOf: string, file: string): BuildReport {
  let json: unknown;
  try {
    json = JSON.parse(textOf);
  } catch (err) {
    throw new KfarmError('BAD_OPTION', `${file} is not valid JSON (${(err as Error).message})`, {
      context: { report: file },
      cause: err,
      hint: 'It was cut short (a full disk?) or edited: build again with `kfarm build --out <that dir>` (finished kernels come from the cache) to write it anew.',
    });
  }
  const parsed = reportSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new KfarmError('BAD_OPTION', `${file} is not a kfarm report: ${issue?.path.join('.') || '(top)'}: ${issue?.message ?? ''}`, {
      context: { report: file },
      hint: 'Pass the --out directory of an earlier `kfarm build`, or build again (this kfarm reads report.json schemaVersion 1; finished kernels come from the cache).',
    });
  }
  // the text's own object, not zod's copy: same content, and a rewrite keeps the writer's key order
  return json as BuildReport;
}

/**
 * `<outDir>/report.json`, read and checked (see above). Given a view (out-dir.ts), the file is
 * read where the view says: a command reads the report it staged itself, else the committed one.
 */
export async function readReport(from: string | { readonly dir: string; locate(rel: string): string }): Promise<BuildReport> {
  const outDir = typeof from === 'string' ? from : from.dir;
  // named by its place in the out dir in every message, wherever it is read from
  const file = path.join(outDir, 'report.json');
  const source = typeof from === 'string' ? file : from.locate('report.json');
  const info = await stat(source).catch((err: NodeJS.ErrnoException) => {
    throw new KfarmError('BAD_OPTION', err.code === 'ENOENT' ? `${outDir} holds no report.json` : `cannot read ${file} (${err.code ?? err.message})`, {
      context: { outDir },
      hint: 'Pass the --out directory of an earlier `kfarm build` (default: dist).',
    });
  });
  if (!info.isFile())
    throw new KfarmError('BAD_OPTION', `${file} is not a file`, { context: { outDir }, hint: 'Pass the --out directory of an earlier `kfarm build` (default: dist).' });
  if (info.size > MAX_REPORT_BYTES) {
    throw new KfarmError('BAD_OPTION', `${file} is ${info.size} bytes, larger than any report kfarm writes (${MAX_REPORT_BYTES >> 20} MiB)`, {
      context: { outDir },
      hint: 'Pass the --out directory of an earlier `kfarm build`.',
    });
  }
  const textOf = await readFile(source, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new KfarmError('BAD_OPTION', `cannot read ${file} (${err.code ?? err.message})`, {
      context: { outDir },
      hint: 'Pass the --out directory of an earlier `kfarm build` that you can read.',
    });
  });
  return parseReport(textOf, file);
}
