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
  const update = (await access(current).then(() => true, () => false)) ? ['--update', '--update-md-path', path.join(repoDir, REPODATA)] : [];
  const args = ['--quiet', '--no-database', '--pkglist', list, ...update, '--outputdir', stage, repoDir];
  const r = await run('createrepo_c', args, { allowFailure: true, timeoutMs: 1_800_000, env: { LC_ALL: 'C', TZ: 'UTC', PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: stage } }).catch((err: unknown) => {
    if (err instanceof KfarmError) throw new KfarmError('COMMAND_FAILED', err.message, { cause: err, hint: 'Install createrepo_c (Debian: `apt-get install createrepo-c`; scripts/setup.sh does): kfarm makes DNF repository metadata with it.' });
    throw err;
  });
  if (r.exitCode !== 0) {
    throw new KfarmError('COMMAND_FAILED', `createrepo_c exited with status ${r.exitCode}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`, { context: { repository: repoDir } });
  }
  return path.join(stage, REPODATA);
}

/** Pure: the files below repodata/ a repomd.xml names (`<location href="repodata/..."/>`). */
export function repomdFiles(repomd: string): string[] {
  return [...repomd.matchAll(/<location\s+href="repodata\/([^"/]+)"/g)].map((m) => m[1]!);
}

/**
 * Moves a staged repodata/ into the repository: the data files first (new names only; a name
 * there already holds the same bytes, since names are checksums), then repomd.xml and its
 * signature by rename. Then removes what neither this repomd.xml nor the one it replaced names.
 * `sign` writes the detached signature of the staged repomd.xml.
 */
export async function swapInRepodata(repoDir: string, staged: string, sign: (repomd: string, out: string) => Promise<void>): Promise<void> {
  const live = path.join(repoDir, REPODATA);
  await makeDirs(live);
  const stagedRepomd = path.join(staged, REPOMD);
  const next = await readFile(stagedRepomd, 'utf8');
  const previous = await readFile(path.join(live, REPOMD), 'utf8').catch(() => '');
  await sign(stagedRepomd, path.join(staged, REPOMD_SIG));
  const there = new Set(await readdir(live));
  for (const name of repomdFiles(next)) {
    if (!there.has(name)) await rename(path.join(staged, name), path.join(live, name));
  }
  // the window between these two renames is the only one in which a reader can pair an index
  // with the other generation's signature (dnf then refuses and retries); data is never missing
  await rename(stagedRepomd, path.join(live, REPOMD));
  await rename(path.join(staged, REPOMD_SIG), path.join(live, REPOMD_SIG));
  const keep = new Set([REPOMD, REPOMD_SIG, ...repomdFiles(next), ...repomdFiles(previous)]);
  for (const name of await readdir(live)) {
    if (!keep.has(name)) await rm(path.join(live, name), { recursive: true, force: true });
  }
}
