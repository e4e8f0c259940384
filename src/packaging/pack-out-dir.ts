import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { readEnv } from '../config/env.js';
import { KfarmError } from '../errors/kfarm-error.js';
import { OutDirStage, withOutDirStage } from '../report/out-dir.js';
import { hashFile } from '../report/out-dir-checksums.js';
import { readReport } from '../report/read-report.js';
import { readPackInputs } from './pack-input.js';
import type { PackFormat } from './packer.js';
import { PACKABLE_FORMATS, PACKERS } from './packers.js';

export interface PackedFile {
  format: PackFormat;
  /** relative to the out dir */
  path: string;
  sha256: string;
  size: number;
}

/** `--format a,b`: known names, no repeats; dkms-tarball is always written and may be named. */
export function parseFormats(list: string): PackFormat[] {
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const known = ['dkms-tarball', ...PACKABLE_FORMATS()];
  const bad = names.find((n) => !known.includes(n));
  if (bad !== undefined) {
    throw new KfarmError('BAD_OPTION', `--format: unknown format ${JSON.stringify(bad)}`, { hint: `Formats: ${known.join(', ')}.` });
  }
  return [...new Set(names)].filter((n) => n !== 'dkms-tarball') as PackFormat[];
}

/**
 * Packs an out dir's results (report.json + DKMS tarballs) into each format, each in its own
 * subdirectory `<out>/<format>/`, replaced whole at commit (so a rerun leaves no stale package),
 * and lists the packages in report.json. Everything goes through the out dir's writer
 * (report/out-dir.ts): given a stage (`kfarm build --format`), the packages are staged there and
 * the tarballs read from it, for the caller to commit; given a path (`kfarm pack`), one stage is
 * opened and committed here, SHA256SUMS written once, and a failure leaves the out dir as it was.
 */
export async function packOutDir(out: string | OutDirStage, formats: readonly PackFormat[], logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<PackedFile[]> {
  if (typeof out === 'string') {
    // read (and checked) before anything is staged: a directory that is no out dir is told so, and left alone
    await readReport(out);
    return withOutDirStage(out, (stage) => packOutDir(stage, formats, logger, env));
  }
  const stage = out;
  const report = await stage.readReport();
  const inputs = await readPackInputs(stage, env, report);
  const packed: PackedFile[] = [];
  for (const format of formats) {
    const packer = PACKERS[format];
    if (!packer) throw new KfarmError('BAD_OPTION', `--format: ${format} is not available in this kfarm`, { hint: `Formats: dkms-tarball, ${PACKABLE_FORMATS().join(', ')}.` });
    const dir = await stage.dirTarget(format);
    for (const input of inputs) {
      logger.info({ format, module: input.name, kernels: input.kernels.length }, 'packing');
      await packer.pack(input, { outDir: dir, logger, stateDir: readEnv(env).stateDir });
    }
    packed.push(...(await filesOf(dir, format)));
  }
  // report.json gains `packages`: the formats packed now replace their earlier entries
  const formatsNow = new Set(packed.map((p) => p.format));
  report.packages = [...(report.packages ?? []).filter((p) => !formatsNow.has(p.format as PackFormat)), ...packed];
  await stage.stageReports(report);
  return packed;
}

/** The files of one format's staged directory, named by their place in the out dir (`<format>/...`). */
async function filesOf(dir: string, format: PackFormat): Promise<PackedFile[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files: PackedFile[] = [];
  for (const e of entries) {
    if (!e.isFile()) continue;
    const abs = path.join(e.parentPath, e.name);
    // streamed: an OCI image or a package can be past the 2 GiB one read can hold
    files.push({ format, path: path.posix.join(format, ...path.relative(dir, abs).split(path.sep)), ...(await hashFile(abs)) });
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : 1));
}
