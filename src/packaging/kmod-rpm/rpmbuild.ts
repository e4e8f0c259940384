import { chmod, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KfarmError } from '../../errors/kfarm-error.js';
import { run } from '../../process/run.js';
import { makeDirs } from '../../util/make-dir.js';

/**
 * The host's real rpmbuild, made reproducible: a binary package whose bytes depend only on the
 * spec, the files and SOURCE_DATE_EPOCH. Build time and host are fixed, every file's mtime is the
 * epoch (staged so, and clamped), the payload compressor and digest are fixed, no build-id links,
 * no debuginfo, no brp scripts, no ~/.rpmmacros (HOME is the temp dir), and nothing is signed.
 * The packer's spec is pure text; this is its one I/O.
 */
export interface RpmBuildRequest {
  spec: string;
  /** absolute paths inside the package, staged into the buildroot by the spec's %install */
  files: ReadonlyArray<{ path: string; data: Buffer; mode: number }>;
  /** --target for arch packages; undefined for a `BuildArch: noarch` spec */
  target: string | undefined;
  sourceDateEpoch: number;
}

export interface BuiltRpm {
  fileName: string;
  data: Buffer;
}

/** rpm's own macro names: the spec's %install copies `%{kfarm_stage}` into the buildroot. */
export const STAGE_MACRO = 'kfarm_stage';

const SAFE_COMPONENT = /^[A-Za-z0-9_.+~-]+$/;

export async function rpmbuild(request: RpmBuildRequest): Promise<BuiltRpm> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'kfarm-rpmbuild-'));
  try {
    const stage = path.join(tmp, 'stage');
    const topdir = path.join(tmp, 'top');
    await makeDirs(stage);
    await makeDirs(path.join(tmp, 'tmp'));
    const when = new Date(request.sourceDateEpoch * 1000);
    const dirs = new Set<string>([stage]);
    for (const file of request.files) {
      const parts = file.path.split('/').filter((p) => p !== '');
      if (!file.path.startsWith('/') || parts.some((p) => p === '.' || p === '..' || !SAFE_COMPONENT.test(p))) {
        throw new KfarmError('UNSAFE_ARCHIVE', `refused to package ${JSON.stringify(file.path.slice(0, 200))}: not a plain absolute path`, {
          context: { path: file.path.slice(0, 200) },
        });
      }
      const target = path.join(stage, ...parts);
      for (let d = path.dirname(target); d.startsWith(stage) && d !== stage; d = path.dirname(d)) dirs.add(d);
      await makeDirs(path.dirname(target));
      await writeFile(target, file.data);
      await chmod(target, file.mode);
      await utimes(target, when, when);
    }
    for (const d of [...dirs].sort().reverse()) {
      await chmod(d, 0o755);
      await utimes(d, when, when);
    }
    const specFile = path.join(tmp, 'package.spec');
    await writeFile(specFile, request.spec);
    const defines: Record<string, string> = {
      _topdir: topdir,
      _tmppath: path.join(tmp, 'tmp'),
      [STAGE_MACRO]: stage,
      _buildhost: 'kfarm',
      use_source_date_epoch_as_buildtime: '1',
      clamp_mtime_to_source_date_epoch: '1',
      source_date_epoch_from_changelog: '0',
      _binary_payload: 'w9.gzdio',
      _binary_filedigest_algorithm: '8',
      _build_id_links: 'none',
      debug_package: '%{nil}',
      __os_install_post: '%{nil}',
      _buildshell: '/bin/sh',
    };
    const args = ['-bb', ...(request.target ? ['--target', request.target] : []), ...Object.entries(defines).flatMap(([k, v]) => ['--define', `${k} ${v}`]), specFile];
    const result = await run('rpmbuild', args, {
      allowFailure: true,
      timeoutMs: 300_000,
      env: { HOME: tmp, SOURCE_DATE_EPOCH: String(request.sourceDateEpoch), LC_ALL: 'C', TZ: 'UTC', PATH: process.env.PATH ?? '/usr/bin:/bin' },
    }).catch((err: unknown) => {
      if (err instanceof KfarmError)
        throw new KfarmError('COMMAND_FAILED', err.message, { cause: err, hint: 'Install rpm (`apt-get install rpm`, which brings rpmbuild): kfarm builds RPM packages with it.' });
      throw err;
    });
    if (result.exitCode !== 0) {
      const tail = (result.stderr || result.stdout).trim().split('\n').slice(-3).join(' | ');
      throw new KfarmError('COMMAND_FAILED', `rpmbuild exited with status ${result.exitCode}: ${tail}`, {
        hint: 'This is a kfarm bug if the input came from `kfarm build`: report it with this message.',
      });
    }
    const rpms = await findRpms(path.join(topdir, 'RPMS'));
    if (rpms.length !== 1)
      throw new KfarmError('COMMAND_FAILED', `rpmbuild wrote ${rpms.length} packages where one was expected`, { context: { rpms: rpms.map((r) => path.basename(r)).join(' ') } });
    const file = rpms[0] ?? '';
    return { fileName: path.basename(file), data: await readFile(file) };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function findRpms(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await findRpms(full)));
    else if (entry.name.endsWith('.rpm')) out.push(full);
  }
  return out;
}
