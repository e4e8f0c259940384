import { copyFile, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Acquire-By-Hash, as Debian's archive does it: each index is also stored as
 * `<its dir>/by-hash/SHA256/<sha256>`, and Release says `Acquire-By-Hash: yes`, so a client
 * fetches the indexes its InRelease names by their hash. A client that read the InRelease just
 * before a publish swapped `dists` then still finds the indexes it expects (the new generation
 * keeps the previous Release's by-hash files), instead of a newer Packages that fails its hash.
 */

/** Pure: the SHA256 lines of a Release file: ` <sha256> <size> <path>`. */
export function releaseSha256(release: string): Array<{ sha256: string; size: number; path: string }> {
  const out: Array<{ sha256: string; size: number; path: string }> = [];
  let inSha256 = false;
  for (const line of release.split('\n')) {
    if (/^\S/.test(line)) inSha256 = /^SHA256:/.test(line);
    else if (inSha256) {
      const m = /^\s+([0-9a-f]{64})\s+(\d+)\s+(\S+)\s*$/.exec(line);
      if (m?.[1] && m[2] && m[3]) out.push({ sha256: m[1], size: Number(m[2]), path: m[3] });
    }
  }
  return out;
}

/** Pure: the Release text with `Acquire-By-Hash: yes` among its fields (once). */
export function withAcquireByHash(release: string): string {
  if (/^Acquire-By-Hash:/m.test(release)) return release;
  // a field line before the first checksum list keeps the paragraph one deb822 paragraph
  const at = release.search(/^(MD5Sum|SHA1|SHA256|SHA512):/m);
  if (at < 0) return `${release.replace(/\n*$/, '\n')}Acquire-By-Hash: yes\n`;
  return `${release.slice(0, at)}Acquire-By-Hash: yes\n${release.slice(at)}`;
}

/**
 * In a suite's staged dists dir: marks Release for by-hash, stores each index it names under
 * by-hash/SHA256/, and removes by-hash files named neither by it nor by `liveRelease` (the
 * Release readers may be using now).
 */
export async function writeByHash(suiteDir: string, liveRelease: string | undefined): Promise<void> {
  const releaseFile = path.join(suiteDir, 'Release');
  const release = withAcquireByHash(await readFile(releaseFile, 'utf8'));
  await writeFile(releaseFile, release);
  const entries = releaseSha256(release);
  const keep = new Set([...entries, ...(liveRelease === undefined ? [] : releaseSha256(liveRelease))].map((e) => `${path.dirname(e.path)}/${e.sha256}`));
  const dirs = new Set<string>();
  for (const e of entries) {
    const dir = path.dirname(e.path);
    dirs.add(dir);
    const target = path.join(suiteDir, dir, 'by-hash', 'SHA256', e.sha256);
    await mkdir(path.dirname(target), { recursive: true });
    // Release may name an index reprepro chose not to write (none today): only what is there
    await copyFile(path.join(suiteDir, e.path), target).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
  for (const dir of dirs) {
    const byHash = path.join(suiteDir, dir, 'by-hash', 'SHA256');
    for (const name of await readdir(byHash)) if (!keep.has(`${dir}/${name}`)) await rm(path.join(byHash, name), { force: true });
  }
}
