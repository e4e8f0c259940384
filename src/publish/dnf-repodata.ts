import { access, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { KfarmError } from '../errors/kfarm-error.js';
import { run } from '../process/run.js';
import { makeDirs } from '../util/make-dir.js';

/**
 * repodata/ for the DNF publisher, made by createrepo_c on the host (Debian's createrepo-c, as
 * rpmbuild for the packers) and put in place so that a reader never sees an index that names a
 * file not yet there. createrepo_c writes into a stage below the repository; its metadata files
 * carry their checksum in their names (its default), so the new ones are moved into repodata/
 * beside the old without touching them, and repomd.xml, the one file a client starts from, is
 * renamed over the old one last, then its signature. The previous generation's files stay until
 * the next publish, for readers that fetched the old repomd.xml a moment before.
 */
export const REPODATA = 'repodata';
export const REPOMD = 'repomd.xml';
export const REPOMD_SIG = 'repomd.xml.asc';

/**
 * createrepo_c over exactly the listed packages (paths relative to the repository), writing
 * `<stage>/repodata/`. `--update` against the repository's current repodata reuses the entry of
 * every package whose size and mtime are unchanged, so a publish reads only the new packages.
 */
export async function makeRepodata(repoDir: string, stage: string, packages: readonly string[]): Promise<string> {
  const list = path.join(stage, 'pkglist');
  await writeFile(list, packages.map((p) => `${p}\n`).join(''));
  const current = path.join(repoDir, REPODATA, REPOMD);
  const update = (await access(current).then(
    () => true,
    () => false,
  ))
    ? ['--update', '--update-md-path', path.join(repoDir, REPODATA)]
    : [];
  const args = ['--quiet', '--no-database', '--pkglist', list, ...update, '--outputdir', stage, repoDir];
  const r = await run('createrepo_c', args, {
    allowFailure: true,
    timeoutMs: 1_800_000,
    env: { LC_ALL: 'C', TZ: 'UTC', PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: stage },
  }).catch((err: unknown) => {
    if (err instanceof KfarmError)
      throw new KfarmError('COMMAND_FAILED', err.message, {
        cause: err,
        hint: 'Install createrepo_c (Debian: `apt-get install createrepo-c`; scripts/setup.sh does): kfarm makes DNF repository metadata with it.',
      });
    throw err;
  });
  if (r.exitCode !== 0) {
    throw new KfarmError('COMMAND_FAILED', `createrepo_c exited with status ${r.exitCode}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`, {
      context: { repository: repoDir },
    });
  }
  return path.join(stage, REPODATA);
}

/** Pure: the files below repodata/ a repomd.xml names (`<location href="repodata/..."/>`). */
export function repomdFiles(repomd: string): string[] {
  return [...repomd.matchAll(/<location\s+href="repodata\/([^"/]+)"/g)].map((m) => m[1]!);
}

/** One step of putting a staged repodata/ in place: a rename from the stage, or a removal from repodata/. */
export type SwapStep = { op: 'move'; name: string } | { op: 'remove'; name: string };

/**
 * Pure: the order that keeps readers safe. The new index's data files that repodata/ lacks
 * first (a name there already holds the same bytes: names are checksums), then repomd.xml,
 * then its signature; last, removal of what neither the new repomd.xml nor the one it replaces
 * names (the previous generation stays for readers that fetched the old repomd.xml a moment
 * before). The window between the two renames is the only one in which a reader can pair an
 * index with the other generation's signature (dnf then refuses, and the next try succeeds);
 * no index ever names a file that is not there.
 */
export function swapSteps(next: string, previous: string, live: readonly string[]): SwapStep[] {
  const there = new Set(live);
  const data = repomdFiles(next);
  const keep = new Set([REPOMD, REPOMD_SIG, ...data, ...repomdFiles(previous)]);
  return [
    ...data.filter((name) => !there.has(name)).map((name): SwapStep => ({ op: 'move', name })),
    { op: 'move', name: REPOMD },
    { op: 'move', name: REPOMD_SIG },
    ...live.filter((name) => !keep.has(name)).map((name): SwapStep => ({ op: 'remove', name })),
  ];
}

/** Moves a staged repodata/ into the repository in swapSteps' order; `sign` writes the staged repomd.xml's detached signature. */
export async function swapInRepodata(repoDir: string, staged: string, sign: (repomd: string, out: string) => Promise<void>): Promise<void> {
  const live = path.join(repoDir, REPODATA);
  await makeDirs(live);
  const stagedRepomd = path.join(staged, REPOMD);
  const next = await readFile(stagedRepomd, 'utf8');
  const previous = await readFile(path.join(live, REPOMD), 'utf8').catch(() => '');
  await sign(stagedRepomd, path.join(staged, REPOMD_SIG));
  const steps = swapSteps(next, previous, await readdir(live));
  for (const step of steps) {
    if (step.op === 'move') await rename(path.join(staged, step.name), path.join(live, step.name));
    else await rm(path.join(live, step.name), { recursive: true, force: true });
  }
}
