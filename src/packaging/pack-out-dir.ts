import { readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { KfarmError } from '../errors/kfarm-error.js';
import { insideDir } from '../util/inside-dir.js';
import { readReport } from '../report/read-report.js';
import type { BuildReport } from '../report/report.js';
import { hashFile, writeChecksums } from './checksums.js';
import { readPackInputs } from './pack-input.js';
import type { PackFormat } from './packer.js';
import { PACKABLE_FORMATS, PACKERS } from './packers.js';
import { writeAtomic } from '../util/write-atomic.js';
import { makeDirs } from '../util/make-dir.js';

export interface PackedFile {
  format: PackFormat;
  /** relative to the out dir */
  path: string;
  sha256: string;
  size: number;
}

/** `--format a,b`: known names, no repeats; dkms-tarball is always written and may be named. */
export function parseFormats(list: string): PackFormat[] {
  const names = list.split(',').map((s) => s.trim()).filter(Boolean);
  const known = ['dkms-tarball', ...PACKABLE_FORMATS()];
  const bad = names.find((n) => !known.includes(n));
  if (bad !== undefined) {
    throw new KfarmError('BAD_OPTION', `--format: unknown format ${JSON.stringify(bad)}`, { hint: `Formats: ${known.join(', ')}.` });
  }
  return [...new Set(names)].filter((n) => n !== 'dkms-tarball') as PackFormat[];
}

/**
 * Packs an out dir's results (report.json + DKMS tarballs) into each format, each in its own
 * subdirectory `<out>/<format>/`, replaced whole: staged beside it and renamed, so a failed
 * pack leaves the previous packages as they were and a rerun leaves no stale one. Then
 * report.json lists the packages and SHA256SUMS covers every deliverable.
 */
export async function packOutDir(outDir: string, formats: readonly PackFormat[], logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<PackedFile[]> {
  const report = await readReport(outDir);
  const inputs = await readPackInputs(outDir, env, report);
  const packed: PackedFile[] = [];
  for (const format of formats) {
    const packer = PACKERS[format];
    if (!packer) throw new KfarmError('BAD_OPTION', `--format: ${format} is not available in this kfarm`, { hint: `Formats: dkms-tarball, ${PACKABLE_FORMATS().join(', ')}.` });
    const final = insideDir(outDir, format);
    const stage = insideDir(outDir, `.${format}.tmp-${process.pid}`);
    await rm(stage, { recursive: true, force: true });
    await makeDirs(stage);
    try {
      for (const input of inputs) {
        logger.info({ format, module: input.name, kernels: input.kernels.length }, 'packing');
        await packer.pack(input, { outDir: stage, logger });
      }
      await rm(final, { recursive: true, force: true });
      await rename(stage, final);
    } catch (err) {
      await rm(stage, { recursive: true, force: true });
      throw err;
    }
    packed.push(...(await filesOf(outDir, format)));
  }
  await recordPackages(outDir, report, packed);
  await writeChecksums(outDir, report);
  return packed;
}

async function filesOf(outDir: string, format: PackFormat): Promise<PackedFile[]> {
  const entries = await readdir(insideDir(outDir, format), { recursive: true, withFileTypes: true });
  const files: PackedFile[] = [];
  for (const e of entries) {
    if (!e.isFile()) continue;
    const abs = path.join(e.parentPath, e.name);
    // streamed: an OCI image or a package can be past the 2 GiB one read can hold
    files.push({ format, path: path.relative(outDir, abs), ...(await hashFile(abs)) });
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : 1));
}

/** report.json gains `packages`: the formats packed now replace their earlier entries. */
async function recordPackages(outDir: string, report: BuildReport, packed: readonly PackedFile[]): Promise<void> {
  const formats = new Set(packed.map((p) => p.format));
  report.packages = [...(report.packages ?? []).filter((p) => !formats.has(p.format as PackFormat)), ...packed];
  await writeAtomic(path.join(outDir, 'report.json'), Buffer.from(`${JSON.stringify(report, null, 2)}\n`));
}
