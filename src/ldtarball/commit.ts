import { constants } from 'node:fs';
import { chmod, lstat, stat, mkdir, mkdtemp, open, readlink, rename, rm, rmdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { KfarmError } from '../errors/kfarm-error.js';
import type { ModulePlan, TreeWrite } from './plan.js';

/**
 * Writes checked plans into a DKMS tree and a source tree, all or nothing:
 * 1. look at what is there (nothing written yet): a kernel already present is refused unless
 *    --force, a source dir with another dkms.conf too, a path component that is a symlink always;
 * 2. stage every unit in a fresh temp dir on the same filesystem as its tree (files opened
 *    O_CREAT|O_EXCL|O_NOFOLLOW in dirs this code created, so no link is ever followed);
 * 3. rename each unit into place (what it replaces is renamed aside first); on any failure,
 *    undo every rename in reverse and remove the dirs created, then drop the temp dirs.
 * What ends up there is what `dkms build` leaves (shared/reference/dkms.md §2.1):
 *   <dkms_tree>/<m>/<v>/<kernel>/<arch>/{module,log}/..., <dkms_tree>/<m>/<v>/build/,
 *   <dkms_tree>/<m>/<v>/source -> <source_tree>/<m>-<v>, and <source_tree>/<m>-<v>/.
 */
export interface Trees {
  dkmsTree: string;
  sourceTree: string;
}

export interface LoadedModule {
  module: string;
  version: string;
  source: 'written' | 'kept' | 'replaced';
  kernels: Array<{ kernel: string; arch: string; replaced: boolean; tarball: string }>;
}

type Unit = {
  tree: 'dkms' | 'source';
  target: string;
  replace: boolean;
} & ({ kind: 'tree'; writes: readonly TreeWrite[] } | { kind: 'link'; linkname: string });

const STAGE_PREFIX = '.kfarm-ldtarball-';

export async function loadPlans(plans: readonly ModulePlan[], given: Trees, force: boolean, log: Logger): Promise<LoadedModule[]> {
  const trees = { dkmsTree: path.resolve(given.dkmsTree), sourceTree: path.resolve(given.sourceTree) };
  const units: Unit[] = [];
  const loaded: LoadedModule[] = [];
  for (const p of plans) loaded.push(await planUnits(p, trees, force, units));

  const created: string[] = [];
  const stages = new Map<'dkms' | 'source', string>();
  const done: Array<{ from: string; to: string }> = [];
  try {
    for (const [tree, root] of [
      ['dkms', trees.dkmsTree],
      ['source', trees.sourceTree],
    ] as const) {
      if (!units.some((u) => u.tree === tree)) continue;
      await ensureDirs(root, created, root);
      stages.set(tree, await mkdtemp(path.join(root, STAGE_PREFIX)));
    }
    const staged: string[] = [];
    for (const [i, u] of units.entries()) {
      const at = path.join(stageOf(stages, u.tree), `u${i}`);
      if (u.kind === 'link') await symlink(u.linkname, at);
      else await writeTree(at, u.writes);
      staged.push(at);
    }
    for (const [i, u] of units.entries()) {
      await ensureDirs(path.dirname(u.target), created, u.tree === 'dkms' ? trees.dkmsTree : trees.sourceTree);
      if (u.replace && (await kindOf(u.target)) !== 'absent') {
        const aside = path.join(stageOf(stages, u.tree), `old${i}`);
        await rename(u.target, aside);
        done.push({ from: u.target, to: aside });
      }
      await rename(staged[i] ?? '', u.target);
      done.push({ from: staged[i] ?? '', to: u.target });
    }
  } catch (err) {
    // renames back first (what was set aside lives in the staging dirs), then the staging dirs, then the dirs made
    const undone = await rollBack(done, log);
    await dropStages(stages, log);
    const removed = await removeCreated(created, log);
    if (err instanceof KfarmError) throw err;
    throw new KfarmError(
      'COMMAND_FAILED',
      `loading into ${trees.dkmsTree} failed: ${(err as Error).message}; ${undone && removed ? 'everything written was taken back' : 'TAKING IT BACK FAILED: see the log'}`,
      {
        cause: err,
        context: { dkmsTree: trees.dkmsTree, sourceTree: trees.sourceTree },
        hint: 'Check that both trees are writable (run as root for /var/lib/dkms and /usr/src) and on one filesystem each.',
      },
    );
  }
  await dropStages(stages, log);
  return loaded;
}

async function planUnits(p: ModulePlan, trees: Trees, force: boolean, units: Unit[]): Promise<LoadedModule> {
  const id = `${p.module}/${p.version}`;
  const conflict = (what: string, target: string, forceHelps: boolean) =>
    new KfarmError('BAD_OPTION', `${p.sourceFrom}: ${what} (${target}); nothing was loaded`, {
      context: { tarball: p.sourceFrom, target },
      hint: forceHelps ? 'Pass --force to replace it, as `dkms ldtarball --force` does.' : 'kfarm does not write through symlinks in the DKMS tree: fix that path first.',
    });
  const moduleDir = path.join(trees.dkmsTree, p.module, p.version);
  for (const dir of [path.join(trees.dkmsTree, p.module), moduleDir]) {
    const kind = await kindOf(dir);
    if (kind !== 'absent' && kind !== 'directory') throw conflict(`${dir} is a ${kind}, not a directory`, dir, false);
  }

  // <source_tree>/<m>-<v>: kept when its dkms.conf is the tarball's, else replaced only with --force
  const sourceDir = path.join(trees.sourceTree, `${p.module}-${p.version}`);
  const sourceKind = await kindOf(sourceDir);
  let source: LoadedModule['source'] = 'written';
  if (sourceKind !== 'absent') {
    const same = sourceKind === 'directory' && (await readNoFollow(path.join(sourceDir, 'dkms.conf')))?.equals(p.dkmsConf) === true;
    if (same) source = 'kept';
    else if (force) source = 'replaced';
    else throw conflict(`${sourceDir} already exists with another dkms.conf`, sourceDir, true);
  }
  if (source !== 'kept') units.push({ tree: 'source', kind: 'tree', target: sourceDir, writes: p.source, replace: source === 'replaced' });

  const link = path.join(moduleDir, 'source');
  const linkKind = await kindOf(link);
  if (linkKind === 'absent') units.push({ tree: 'dkms', kind: 'link', target: link, linkname: sourceDir, replace: false });
  else if (!(linkKind === 'symlink' && (await readlink(link)) === sourceDir)) {
    if (!force) throw conflict(`${id} is already added with another source`, link, true);
    units.push({ tree: 'dkms', kind: 'link', target: link, linkname: sourceDir, replace: true });
  }
  const build = path.join(moduleDir, 'build');
  if ((await kindOf(build)) === 'absent') units.push({ tree: 'dkms', kind: 'tree', target: build, writes: [], replace: false });

  const kernels: LoadedModule['kernels'] = [];
  for (const k of p.kernels) {
    const kernelDir = path.join(moduleDir, k.kernel);
    const parentKind = await kindOf(kernelDir);
    if (parentKind !== 'absent' && parentKind !== 'directory') throw conflict(`${kernelDir} is a ${parentKind}, not a directory`, kernelDir, false);
    const target = path.join(kernelDir, k.arch);
    const present = (await kindOf(target)) !== 'absent';
    if (present && !force) throw conflict(`${id} is already built for ${k.kernel}/${k.arch}`, target, true);
    units.push({ tree: 'dkms', kind: 'tree', target, writes: k.files, replace: present });
    kernels.push({ kernel: k.kernel, arch: k.arch, replaced: present, tarball: k.tarball });
  }
  return { module: p.module, version: p.version, source, kernels };
}

function stageOf(stages: ReadonlyMap<'dkms' | 'source', string>, tree: 'dkms' | 'source'): string {
  const dir = stages.get(tree);
  if (!dir) throw new Error(`no staging dir for the ${tree} tree`);
  return dir;
}

type Kind = 'absent' | 'directory' | 'file' | 'symlink' | 'special file';

async function kindOf(p: string): Promise<Kind> {
  try {
    const st = await lstat(p);
    return st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'special file';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw err;
  }
}

async function readNoFollow(file: string): Promise<Buffer | undefined> {
  try {
    const fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      return await fh.readFile();
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }
}

/**
 * mkdir -p, recording each dir it creates (for the rollback). Below a tree root every existing
 * component must be a real dir; the root itself (and what lies above it) may be a link: the user named it.
 */
async function ensureDirs(dir: string, created: string[], root: string): Promise<void> {
  const isRoot = !dir.startsWith(`${root}/`);
  const kind = await kindOf(dir);
  if (kind === 'directory') return;
  if (
    kind === 'symlink' &&
    isRoot &&
    (await stat(dir).then(
      (s) => s.isDirectory(),
      () => false,
    ))
  )
    return;
  if (kind !== 'absent') throw new Error(`${dir} is a ${kind}, not a directory`);
  await ensureDirs(path.dirname(dir), created, root);
  await mkdir(dir, { mode: 0o755 });
  created.push(dir);
}

/** Writes a unit into a path that does not exist yet; every dir on the way is created here. */
async function writeTree(root: string, writes: readonly TreeWrite[]): Promise<void> {
  await mkdir(root, { mode: 0o755 });
  await chmod(root, 0o755);
  for (const w of writes) {
    const at = path.join(root, ...w.path.split('/'));
    await mkdirUnder(root, path.dirname(at));
    if (w.type === 'directory') {
      if ((await kindOf(at)) !== 'directory') await mkdir(at, { mode: 0o755 });
      await chmod(at, 0o755);
    } else if (w.type === 'symlink') {
      await symlink(w.linkname ?? '', at);
    } else {
      const fh = await open(at, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, w.mode);
      try {
        await fh.writeFile(w.data ?? Buffer.alloc(0));
        await fh.chmod(w.mode);
      } finally {
        await fh.close();
      }
    }
  }
}

async function mkdirUnder(root: string, dir: string): Promise<void> {
  if (dir === root) return;
  const kind = await kindOf(dir);
  if (kind === 'directory') return;
  if (kind !== 'absent') throw new Error(`${dir} is a ${kind} in the staged tree`);
  await mkdirUnder(root, path.dirname(dir));
  await mkdir(dir, { mode: 0o755 });
  await chmod(dir, 0o755);
}

async function rollBack(done: Array<{ from: string; to: string }>, log: Logger): Promise<boolean> {
  let ok = true;
  for (const step of [...done].reverse()) {
    await rename(step.to, step.from).catch((err: unknown) => {
      ok = false;
      log.error({ err, from: step.to, to: step.from }, 'ldtarball: rollback rename failed');
    });
  }
  return ok;
}

async function removeCreated(created: readonly string[], log: Logger): Promise<boolean> {
  let ok = true;
  for (const dir of [...created].reverse()) {
    await rmdir(dir).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY') {
        ok = false;
        log.error({ err, dir }, 'ldtarball: rollback rmdir failed');
      }
    });
  }
  return ok;
}

async function dropStages(stages: ReadonlyMap<string, string>, log: Logger): Promise<void> {
  for (const dir of stages.values()) {
    await rm(dir, { recursive: true, force: true }).catch((err: unknown) => log.warn({ err, dir }, 'ldtarball: removing the staging dir failed'));
  }
}
