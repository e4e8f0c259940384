import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { isValidLocation } from '../dkms/names.js';
import { KfarmError } from '../errors/kfarm-error.js';
import { EPOCH, extractTar, type TarEntry } from '../executor/archive.js';
import { readReport } from '../report/read-report.js';
import type { BuildReport } from '../report/report.js';
import { readSourceTar } from '../source/read-source-tar.js';
import { committedView, type OutDirView } from '../report/out-dir.js';
import type { PackInput, PackKernel } from './packer.js';

/**
 * `kfarm pack <out-dir>`: an earlier build's results read back from its out dir, one PackInput
 * per module: report.json says what was built, each built kernel's binaries-only tarball holds
 * its modules and logs, the full tarball the source. The out dir is a user's directory like
 * any other input: report.json is read through report/read-report.ts (a schema; names by kfarm's
 * rules, since they become paths in packages), every module's bytes against the sha256 report.json gives, and
 * tarballs are read with the same caps and link rules as everything else.
 */
const TAR_LIMITS = { maxBytes: 512 * 1024 * 1024, maxEntries: 200_000 };

/** SOURCE_DATE_EPOCH when set (reproducible-builds.org), else kfarm's fixed tar epoch: never the clock. */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number {
  const value = env.SOURCE_DATE_EPOCH;
  if (value === undefined || value === '') return Math.floor(EPOCH.getTime() / 1000);
  if (!/^\d{1,12}$/.test(value)) {
    throw new KfarmError('BAD_OPTION', `SOURCE_DATE_EPOCH=${JSON.stringify(value.slice(0, 40))} is not a number of seconds`, {
      hint: 'Set it to seconds since 1970 (e.g. `git log -1 --format=%ct`) or unset it.',
    });
  }
  return Number(value);
}

/**
 * `from`: the out dir, or a view of it (a command that staged tarballs reads them from its stage:
 * report/out-dir.ts); `report`: its report.json when the caller has read it already (readReport)
 */
export async function readPackInputs(from: string | OutDirView, env: NodeJS.ProcessEnv = process.env, read?: BuildReport): Promise<PackInput[]> {
  const view = typeof from === 'string' ? committedView(from) : from;
  const outDir = view.dir;
  const report = read ?? (await readReport(view));
  const modules = report.modules ?? [{ name: report.module, version: report.version, fullTarball: report.fullTarball }];
  const epoch = sourceDateEpoch(env);
  const inputs: PackInput[] = [];
  for (const m of modules) {
    const rows = report.kernels.filter((k) => (k.module ?? report.module) === m.name && (k.version ?? report.version) === m.version && k.verdict === 'built');
    if (rows.length === 0) continue;
    const kernels: PackKernel[] = [];
    let dkmsConf: Buffer | undefined;
    for (const row of rows) {
      if (!row.tarball) throw corrupt(outDir, `${row.kernel} is built but has no tarball in report.json`);
      const entries = await readTarball(view, row.tarball.path, row.tarball.sha256);
      const byPath = new Map(entries.map((e) => [e.path, e]));
      const base = `dkms_main_tree/${row.kernel}/${row.arch}`;
      dkmsConf ??= byPath.get('dkms_binaries_only/dkms.conf')?.data;
      kernels.push({
        kernel: row.kernel,
        arch: row.arch,
        debianArch: row.debianArch,
        release: row.release,
        makeLog: byPath.get(`${base}/log/make.log`)?.data,
        kernelConfig: byPath.get(`${base}/log/.config`)?.data,
        modules: row.modules.map((mod) => {
          const data = byPath.get(`${base}/module/${mod.file}`)?.data;
          if (!data) throw corrupt(outDir, `${row.tarball?.path ?? ''} lacks ${mod.file}`);
          if (createHash('sha256').update(data).digest('hex') !== mod.sha256) throw corrupt(outDir, `${mod.file} of ${row.kernel} does not match the sha256 report.json gives`);
          const prefix = `/lib/modules/${row.kernel}/`;
          const installLocation = mod.destination.slice(prefix.length - 1, -(mod.file.length + 1));
          if (!mod.destination.startsWith(prefix) || !mod.destination.endsWith(`/${mod.file}`) || !isValidLocation(installLocation.replace(/^\//, ''))) {
            throw corrupt(outDir, `${mod.file} of ${row.kernel} has a destination outside /lib/modules/${row.kernel}: ${JSON.stringify(mod.destination.slice(0, 200))}`);
          }
          return { builtName: mod.builtName, destName: mod.name, fileName: mod.file, installLocation, destLocation: mod.destModuleLocation, data };
        }),
      });
    }
    const source = m.fullTarball ? await sourceOf(view, m.fullTarball.path, m.fullTarball.sha256) : [];
    if (!dkmsConf) throw corrupt(outDir, `the tarballs of ${m.name} hold no dkms.conf`);
    inputs.push({ name: m.name, version: m.version, dkmsConf, source, kernels, sourceDateEpoch: epoch });
  }
  return inputs;
}

function corrupt(outDir: string, message: string): KfarmError {
  return new KfarmError('BAD_OPTION', `${outDir}: ${message}`, {
    context: { outDir },
    hint: 'The out dir changed since the build wrote it: rebuild with `kfarm build` (finished results come from the cache).',
  });
}

async function readVerified(view: OutDirView, rel: string, expected: string): Promise<Buffer> {
  const outDir = view.dir;
  const file = view.locate(rel);
  const info = await stat(file).catch(() => {
    throw corrupt(outDir, `${rel} is missing`);
  });
  // a tarball past what its contents may unpack to is not one kfarm wrote: not read into memory (nor past readFile's 2 GiB)
  if (!info.isFile() || info.size > TAR_LIMITS.maxBytes) throw corrupt(outDir, `${rel} is not a tarball kfarm wrote (${info.isFile() ? `${info.size} bytes` : 'not a file'})`);
  const data = await readFile(file).catch(() => {
    throw corrupt(outDir, `${rel} is missing`);
  });
  if (createHash('sha256').update(data).digest('hex') !== expected) throw corrupt(outDir, `${rel} does not match the sha256 report.json gives`);
  return data;
}

async function readTarball(view: OutDirView, rel: string, expected: string): Promise<TarEntry[]> {
  return extractTar(gunzipSync(await readVerified(view, rel, expected)), { ...TAR_LIMITS, allowSymlinks: false }, rel);
}

/** dkms_source_tree/ of a full tarball, links kept as links. */
async function sourceOf(view: OutDirView, rel: string, expected: string): Promise<TarEntry[]> {
  const entries = await readSourceTar(gunzipSync(await readVerified(view, rel, expected)), TAR_LIMITS, rel);
  const prefix = 'dkms_source_tree/';
  return entries.filter((e) => e.path.startsWith(prefix)).map((e) => ({ ...e, path: e.path.slice(prefix.length) }));
}
