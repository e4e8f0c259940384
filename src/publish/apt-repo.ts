import { copyFile, cp, lstat, mkdir, readFile, readdir, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { KfarmError } from '../errors/kfarm-error.js';
import { buildDeb } from '../packaging/deb/build-deb.js';
import { tryLockFile, lockNote, type FileLock } from '../process/file-lock.js';
import { run } from '../process/run.js';
import { writeAtomic } from '../util/write-atomic.js';
import { writeByHash } from './apt-by-hash.js';
import { asFullDisk, saysNoSpace } from './full-disk.js';
import { readAptPackages } from './apt-inputs.js';
import { metaPackageLayout } from './apt-metapackage.js';
import { EMPTY_MANIFEST, planApt, type AptManifest, type AptPlan } from './apt-plan.js';
import { openRepoKey } from './repo-key.js';

/**
 * The APT publisher's apply step: the plan (apt-plan.ts) carried out with reprepro on the host,
 * signed on the host with the repository key (repo-key.ts: reprepro never sees it).
 *
 * Layout of a repository directory:
 *   pool/main/...            the packages (reprepro's pool; with keep, files leave it one publish after their removal)
 *   dists -> generations/N   a symlink, swapped by rename(2): the one thing a reader follows
 *   generations/N/<suite>/   a complete, signed copy of the indexes (Release, InRelease, Release.gpg)
 *   .kfarm/                  kfarm's own: repository.json (the mark), manifest.json, lock,
 *                            reprepro's conf and db, and reprepro's dists, which readers never see
 *
 * Readers never see an index naming a file that is not there yet: the pool is written first,
 * then the indexes and their signatures in reprepro's private dists, then that whole tree is
 * copied into a new generation and `dists` is pointed at it in one rename. A publish that stops
 * half way (a full disk, a kill) leaves `dists` pointing at the previous, complete and signed,
 * generation. The previous generation is kept, so a client that read the old InRelease just
 * before the swap still finds the indexes it names.
 *
 * Why reprepro on the host: it is Debian's own archive tool (5.3.1 in bookworm), adding one
 * package to a suite holding 200 takes it 21 ms where aptly's add + publish update takes 181 ms
 * (docs/publishing.md); it writes the pool and the dists where it is told, so the private dists
 * and the generation swap need no patching; and it runs no code from the packages (it reads
 * their control files), so it needs no container. A container would cost a start per publish and
 * reprepro in kfarm's image, and signing stays on the host anyway.
 */
export interface AptPublishOptions {
  repoDir: string;
  outDirs: readonly string[];
  keyFile: string;
  passphrase?: string;
  logger: Logger;
  /** how long to wait for another publish to the same repository (default 30 min) */
  lockTimeoutMs?: number;
  /** mtimes inside the metapackages (default 0: the same metapackage gives the same bytes) */
  sourceDateEpoch?: number;
  /** Origin and Label of the Release files (default kfarm) */
  origin?: string;
  /** keep the newest N module versions of each module per suite (apt-plan.ts); default: every version */
  keep?: number;
}

export interface AptPublishResult {
  repoDir: string;
  plan: AptPlan;
  /** the generation `dists` points at now */
  generation: number;
  fingerprint: string;
  durationMs: number;
}

const MARK = { kind: 'kfarm-apt-repository', schemaVersion: 1 } as const;
const KEEP_GENERATIONS = 2;

export async function publishApt(options: AptPublishOptions): Promise<AptPublishResult> {
  const started = Date.now();
  const repoDir = path.resolve(options.repoDir);
  const log = options.logger.child({ repo: repoDir });
  // everything that can refuse, before anything is written: the directory, the key, the packages
  await checkRepoDir(repoDir);
  const key = await openRepoKey({ keyFile: options.keyFile, ...(options.passphrase === undefined ? {} : { passphrase: options.passphrase }) });
  try {
    const packages = await readAptPackages(options.outDirs);
    if (packages.length === 0) {
      throw new KfarmError('BAD_OPTION', `${options.outDirs.join(', ')}: report.json lists no bmdeb or dkms-deb package: nothing to publish to an APT repository`, {
        context: { outDirs: options.outDirs.join(' ') },
        hint: 'Build with --format bmdeb,dkms-deb (or `kfarm pack <out> --format bmdeb,dkms-deb`) first.',
      });
    }
    const state = path.join(repoDir, '.kfarm');
    await mkdir(state, { recursive: true });
    const lock = await waitForLock(path.join(state, 'lock'), options.lockTimeoutMs ?? 30 * 60_000, log);
    try {
      return await apply(repoDir, state, packages, key, options, log, started);
    } catch (err) {
      // a full disk is the environment (FILE_SYSTEM, exit 3), whichever tool ran into it
      throw asFullDisk(err, repoDir);
    } finally {
      await lock.release();
    }
  } finally {
    await key.close();
  }
}

async function apply(
  repoDir: string,
  state: string,
  packages: Awaited<ReturnType<typeof readAptPackages>>,
  key: Awaited<ReturnType<typeof openRepoKey>>,
  options: AptPublishOptions,
  log: Logger,
  started: number,
): Promise<AptPublishResult> {
  // checked again under the lock: another publish may have made it meanwhile, which is fine;
  // anything else that appeared is not
  await checkRepoDir(repoDir);
  await writeAtomic(path.join(state, 'repository.json'), Buffer.from(`${JSON.stringify(MARK)}\n`));
  const manifest = await readManifest(state);
  const plan = planApt(packages, manifest, options.keep === undefined ? {} : { keep: options.keep });
  log.info(
    {
      add: plan.add.length,
      present: plan.present.length,
      older: plan.older.length,
      held: plan.held.length,
      remove: plan.remove.length,
      metapackages: plan.metapackages.length,
    },
    'apt publish planned',
  );
  for (const warning of plan.warnings) log.warn(warning);

  const incoming = path.join(state, 'incoming');
  await rm(incoming, { recursive: true, force: true });
  await mkdir(incoming, { recursive: true });
  const metaFiles = new Map<string, string>();
  const metaSha = new Map<string, string>();
  for (const meta of plan.metapackages) {
    const layout = metaPackageLayout(meta);
    const written = await writeAtomic(path.join(incoming, layout.fileName), await buildDeb(layout, options.sourceDateEpoch ?? 0));
    metaFiles.set(`${meta.suite}|${meta.package}|${meta.architecture}`, written.path);
    metaSha.set(written.path, written.sha256);
    const entry = plan.manifest.packages.find((p) => p.suite === meta.suite && p.package === meta.package && p.architecture === meta.architecture);
    if (entry) entry.sha256 = written.sha256;
  }

  const reprepro = repreproRunner(repoDir, state);
  // reprepro's own lock (db/lockfile, made with O_EXCL and removed on exit) stays behind when a
  // publish is killed, and then refuses every later run ("you are sure no other version is still
  // running!"). reprepro runs only under kfarm's kernel lock, which we hold: the file is stale.
  await rm(path.join(state, 'reprepro', 'db', 'lockfile'), { force: true });
  await writeConf(state, plan, options.origin ?? 'kfarm');
  // keep: what the previous publish took out of the suites left the pool now (the
  // generation kept for readers named it; this publish removes that generation), then this
  // publish's removals leave the suites (their files stay in the pool until the next one)
  if (options.keep !== undefined) await reprepro(['deleteunreferenced']);
  for (const e of plan.remove) await reprepro(['--export=silent-never', '-A', e.architecture, 'remove', e.suite, e.package]);
  for (const suite of plan.suites) {
    const files = [
      ...plan.add.filter((a) => a.suite === suite.codename).map((a) => a.pkg.file),
      ...plan.metapackages.filter((m) => m.suite === suite.codename).map((m) => metaFiles.get(`${m.suite}|${m.package}|${m.architecture}`) ?? ''),
    ];
    // the pool first: includedeb copies each file into pool/ and records it; the indexes
    // readers see are written later, in one swap
    if (files.length > 0) await reprepro(['--export=silent-never', 'includedeb', suite.codename, ...files]);
  }
  // a held dkms-deb's version into a suite that lacks it: the published file, never the new one
  for (const c of plan.copies) await reprepro(['--export=silent-never', '-A', c.architecture, 'copy', c.suite, c.from, c.package]);
  await reprepro(['export', ...plan.suites.map((s) => s.codename)]);
  // a publish killed while reprepro ran can leave its database naming a pool file that never
  // arrived (the next includedeb then takes the package as present and copies nothing): put
  // back each such file from this publish's own packages, or refuse to swap in the index
  const sources = new Map<string, string>([...plan.add.map((a) => [a.pkg.sha256, a.pkg.file] as const), ...[...metaSha].map(([f, h]) => [h, f] as const)]);
  await restorePoolFiles(
    repoDir,
    plan.suites.map((s) => path.join(state, 'dists', s.codename)),
    sources,
  );

  const staged = path.join(state, 'dists');
  for (const suite of plan.suites) {
    const dir = path.join(staged, suite.codename);
    const live = await readFile(path.join(repoDir, 'dists', suite.codename, 'Release'), 'utf8').catch(() => undefined);
    await writeByHash(dir, live);
    await key.clearSign(path.join(dir, 'Release'), path.join(dir, 'InRelease'));
    await key.detachSign(path.join(dir, 'Release'), path.join(dir, 'Release.gpg'));
  }
  // the manifest before the swap, so that the swap is the publish's last write: it records what
  // reprepro's database holds already, and a publish that fails after it (a full disk) must not
  // have changed what readers see; only removals follow the swap
  await writeAtomic(path.join(state, 'manifest.json'), Buffer.from(`${JSON.stringify(plan.manifest, null, 1)}\n`));
  const generation = await swapDists(repoDir, staged);
  await rm(incoming, { recursive: true, force: true });
  const durationMs = Date.now() - started;
  log.info({ generation, durationMs, fingerprint: key.fingerprint }, 'apt repository published');
  return { repoDir, plan, generation, fingerprint: key.fingerprint, durationMs };
}

/**
 * A repository directory is one kfarm made (its mark is there), or does not exist yet, or is
 * empty. Anything else is someone's directory: refused, untouched. `.kfarm/` with only the lock
 * in it is a first publish that has just started (it writes the mark first thing under the lock).
 */
export async function checkRepoDir(repoDir: string): Promise<void> {
  const info = await lstat(repoDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new KfarmError('FILE_SYSTEM', `cannot read ${repoDir} (${err.code ?? err.message})`, { context: { repoDir } });
  });
  if (info === undefined) return;
  const refuse = (why: string) =>
    new KfarmError('PUBLISH_REFUSED', `${repoDir} ${why}: kfarm publishes only into a directory it made (or an empty one), and left it untouched`, {
      context: { repoDir },
      hint: 'Give a new or empty directory for the repository, or one an earlier `kfarm publish --apt` made.',
    });
  if (!info.isDirectory()) throw refuse('is not a directory');
  const mark = await readFile(path.join(repoDir, '.kfarm', 'repository.json'), 'utf8').catch(() => undefined);
  if (mark !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(mark);
    } catch {
      parsed = undefined;
    }
    if ((parsed as { kind?: unknown } | undefined)?.kind !== MARK.kind) throw refuse('holds a .kfarm/repository.json that is not an APT repository mark');
    return;
  }
  const names = await readdir(repoDir);
  if (names.some((n) => n !== '.kfarm')) throw refuse('holds something other than a kfarm APT repository');
  if (names.includes('.kfarm')) {
    const inner = await readdir(path.join(repoDir, '.kfarm'));
    if (inner.some((n) => n !== 'lock')) throw refuse('holds a .kfarm directory kfarm did not make');
  }
}

async function waitForLock(file: string, timeoutMs: number, log: Logger): Promise<FileLock> {
  const until = Date.now() + timeoutMs;
  let said = false;
  for (;;) {
    const lock = await tryLockFile(file, `${process.pid}\n`);
    if (lock) return lock;
    if (!said) {
      log.info({ holder: await lockNote(file) }, 'another publish holds the repository; waiting');
      said = true;
    }
    if (Date.now() > until) {
      throw new KfarmError('FILE_SYSTEM', `another publish (pid ${await lockNote(file)}) has held ${file} for ${Math.round(timeoutMs / 1000)} s`, {
        context: { lock: file },
        hint: 'Publishes to one repository run one at a time: wait for the other, or stop it.',
      });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function readManifest(state: string): Promise<AptManifest> {
  const text = await readFile(path.join(state, 'manifest.json'), 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (text === undefined) return EMPTY_MANIFEST;
  const parsed = JSON.parse(text) as AptManifest;
  if (parsed.schemaVersion !== 1 || !Array.isArray(parsed.packages) || !Array.isArray(parsed.suites)) {
    throw new KfarmError('PUBLISH_REFUSED', `${state}/manifest.json is not a manifest this kfarm reads`, { context: { state } });
  }
  return parsed;
}

function repreproRunner(repoDir: string, state: string): (args: string[]) => Promise<void> {
  const base = [
    '--basedir',
    path.join(state, 'reprepro'),
    '--outdir',
    repoDir,
    '--distdir',
    path.join(state, 'dists'),
    '--dbdir',
    path.join(state, 'reprepro', 'db'),
    '--confdir',
    path.join(state, 'reprepro', 'conf'),
    '--silent',
  ];
  return async (args) => {
    // a replaced version's file stays in the pool: the previous generation, which a reader may
    // still be reading, names it (reprepro refuses the option with deleteunreferenced, the one
    // command that removes such files on purpose)
    const keep = args.includes('deleteunreferenced') ? [] : ['--keepunreferencedfiles'];
    const r = await run('reprepro', [...base, ...keep, ...args], { timeoutMs: 30 * 60_000, allowFailure: true });
    if (r.exitCode !== 0) {
      // reprepro's last line after a failed write is "Changes will only be visible after the
      // next 'export'!": the cause (a full disk) is earlier in its output
      const output = (r.stderr || r.stdout).trim().split('\n');
      const why = output.find((l) => saysNoSpace(l)) ?? output.at(-1) ?? '';
      throw new KfarmError('COMMAND_FAILED', `reprepro exited with status ${r.exitCode}: ${why}`, { context: { command: ['reprepro', ...args].join(' ') } });
    }
  };
}

/** reprepro's conf/distributions: a suite per release, component main, the plan's arches; never a SignWith (kfarm signs). */
async function writeConf(state: string, plan: AptPlan, origin: string): Promise<void> {
  const conf = path.join(state, 'reprepro', 'conf');
  await mkdir(conf, { recursive: true });
  const text = plan.suites
    .map((s) =>
      [
        `Origin: ${origin}`,
        `Label: ${origin}`,
        `Codename: ${s.codename}`,
        `Suite: ${s.codename}`,
        `Architectures: ${s.arches.join(' ')}`,
        'Components: main',
        `Description: kernel modules built by kfarm for ${s.release} (${s.codename})`,
        '',
      ].join('\n'),
    )
    .join('\n');
  await writeFile(path.join(conf, 'distributions'), text);
}

/**
 * Copies reprepro's signed dists into a new generation and points `dists` at it with one
 * rename; then removes generations older than the previous one.
 */
async function swapDists(repoDir: string, staged: string): Promise<number> {
  const generations = path.join(repoDir, 'generations');
  await mkdir(generations, { recursive: true });
  const link = path.join(repoDir, 'dists');
  const current = await readlink(link).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new KfarmError('PUBLISH_REFUSED', `${link} is not the symlink kfarm keeps there`, { context: { repoDir } });
  });
  const numbers = (await readdir(generations)).filter((n) => /^\d+$/.test(n)).map(Number);
  const next = Math.max(0, ...numbers) + 1;
  const target = path.join(generations, String(next));
  await cp(staged, target, { recursive: true });
  const temp = path.join(repoDir, `.dists-${process.pid}`);
  await rm(temp, { force: true });
  await symlink(path.join('generations', String(next)), temp);
  await rename(temp, link);
  // keep the generation readers may still be reading; remove the rest (incomplete ones too)
  const keep = new Set([String(next), ...(current ? [path.basename(current)] : [])].slice(0, KEEP_GENERATIONS));
  for (const n of await readdir(generations)) if (!keep.has(n)) await rm(path.join(generations, n), { recursive: true, force: true });
  return next;
}

/**
 * Every pool file the staged Packages indexes name must be there with its size before the index
 * is swapped in. A missing one whose bytes this publish has (by sha256) is copied into place
 * (through a temporary name); any other is an error, and readers keep the previous generation.
 */
async function restorePoolFiles(repoDir: string, suiteDirs: readonly string[], sources: ReadonlyMap<string, string>): Promise<void> {
  for (const suiteDir of suiteDirs) {
    const indexes = (await readdir(suiteDir, { recursive: true })).filter((f) => path.basename(f) === 'Packages' && !f.includes('by-hash'));
    for (const index of indexes) {
      for (const stanza of (await readFile(path.join(suiteDir, index), 'utf8')).split(/\n\n+/)) {
        const filename = /^Filename: (.+)$/m.exec(stanza)?.[1];
        const size = Number(/^Size: (\d+)$/m.exec(stanza)?.[1]);
        const sha256 = /^SHA256: ([0-9a-f]{64})$/m.exec(stanza)?.[1];
        if (!filename || !sha256) continue;
        const target = path.join(repoDir, filename);
        const there = await stat(target).catch(() => undefined);
        if (there?.size === size) continue;
        const source = sources.get(sha256);
        if (!source) {
          throw new KfarmError(
            'PUBLISH_REFUSED',
            `${filename}, named by reprepro's database, is not in the pool (an earlier publish stopped half way?): the new index was not published`,
            {
              context: { repoDir },
              hint: 'Publish again the out dir that holds this package: its file is put back.',
            },
          );
        }
        const temp = `${target}.kfarm-restore`;
        await copyFile(source, temp);
        await rename(temp, target);
      }
    }
  }
}
