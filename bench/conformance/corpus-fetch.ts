import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { run } from '../../src/process/run.js';
import { dkmsSourceDirOf, type CorpusSource } from './corpus.js';
import { parseDownloadOutput } from './package-output.js';
import { containerScript } from './scripts.js';

/**
 * The archive half of the corpus: each release's own version of the DKMS packages, fetched with
 * `apt-get download` in a container of that release, kept by content below the cache dir
 * (debs/<sha256>.deb, unpacked once into src/<sha256>/), with a per-release index of what
 * was fetched. The index is reused until --refresh.
 */
const Index = z.object({
  fetchedAt: z.string(),
  packages: z.array(z.object({ package: z.string(), version: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/), sourceDir: z.string() })),
  missing: z.array(z.string()),
});
type Index = z.infer<typeof Index>;

export interface ReleaseCorpus {
  sources: CorpusSource[];
  missing: string[];
}

export async function fetchReleaseCorpus(
  runtime: DockerRuntime,
  image: string,
  release: string,
  packages: readonly string[],
  cacheDir: string,
  refresh: boolean,
): Promise<ReleaseCorpus> {
  const indexPath = path.join(cacheDir, `index-${release}.json`);
  let index: Index | undefined;
  if (!refresh) {
    const cached = await readFile(indexPath, 'utf8').then(
      (t) => Index.safeParse(JSON.parse(t)),
      () => undefined,
    );
    const wanted = new Set(packages);
    if (cached?.success && [...cached.data.packages.map((p) => p.package), ...cached.data.missing].filter((p) => wanted.has(p)).length === wanted.size) index = cached.data;
  }
  if (!index) index = await download(runtime, image, release, packages, cacheDir);
  await writeFile(indexPath, `${JSON.stringify(index, null, 2)}\n`);
  const sources: CorpusSource[] = [];
  for (const p of index.packages.filter((x) => packages.includes(x.package))) {
    sources.push({ label: p.package, origin: `${p.package} ${p.version}`, dir: path.join(await unpacked(cacheDir, p.sha256), 'usr', 'src', p.sourceDir) });
  }
  return { sources, missing: index.missing.filter((m) => packages.includes(m)) };
}

async function download(runtime: DockerRuntime, image: string, release: string, packages: readonly string[], cacheDir: string): Promise<Index> {
  let result = parseDownloadOutput((await runtime.runHelper(image, ['bash', '-c', await containerScript('download.sh'), 'download', ...packages], undefined, 20 * 60_000)).output);
  if (result.failed.length > 0) {
    // DNS fails now and then: one more go for the ones that failed
    const again = parseDownloadOutput(
      (await runtime.runHelper(image, ['bash', '-c', await containerScript('download.sh'), 'download', ...result.failed], undefined, 20 * 60_000)).output,
    );
    result = { ...again, debs: [...result.debs, ...again.debs], missing: [...result.missing, ...again.missing] };
  }
  if (!result.complete || result.failed.length > 0) {
    throw new Error(`downloading the ${release} DKMS packages failed${result.failed.length ? ` for ${result.failed.join(', ')}` : ''}: check the network and run again`);
  }
  await mkdir(path.join(cacheDir, 'debs'), { recursive: true });
  const entries: Index['packages'] = [];
  for (const deb of result.debs) {
    const sha256 = createHash('sha256').update(deb.data).digest('hex');
    const file = path.join(cacheDir, 'debs', `${sha256}.deb`);
    await writeFile(`${file}.tmp`, deb.data);
    await rename(`${file}.tmp`, file);
    const contents = (await run('dpkg-deb', ['--contents', file])).stdout;
    const sourceDir = dkmsSourceDirOf(contents.split('\n').map((l) => l.trim().split(/\s+/).slice(5).join(' ').split(' -> ')[0] ?? ''));
    if (!sourceDir) throw new Error(`${deb.file} holds no single /usr/src/<module>-<version>/dkms.conf`);
    const version = /^[^_]+_([^_]+)_/.exec(deb.file)?.[1]?.replace(/%3a/gi, ':') ?? '?';
    entries.push({ package: deb.package, version, sha256, sourceDir });
  }
  return { fetchedAt: new Date().toISOString(), packages: entries, missing: result.missing };
}

/** The .deb unpacked (dpkg-deb -x) once, into src/<sha256>/. */
async function unpacked(cacheDir: string, sha256: string): Promise<string> {
  const dir = path.join(cacheDir, 'src', sha256);
  if (
    await stat(path.join(dir, '.done')).then(
      () => true,
      () => false,
    )
  )
    return dir;
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await run('dpkg-deb', ['-x', path.join(cacheDir, 'debs', `${sha256}.deb`), dir]);
  await writeFile(path.join(dir, '.done'), '');
  return dir;
}
