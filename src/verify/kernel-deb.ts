import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { compareDebianVersions } from '../archive/debian-version.js';
import { keepStanzas, parseStanzas, type Stanza } from '../archive/deb822.js';
import { fetchReleaseFile, type IndexStoreOptions } from '../archive/index-store.js';
import { request } from '../archive/http-client.js';
import { DEFAULT_MIRRORS, RELEASES } from '../archive/releases.js';
import { KfarmError } from '../errors/kfarm-error.js';
import { runStream } from '../process/run.js';
import { makeDirs } from '../util/make-dir.js';

/** The archive's entry of one kernel image package: where it is and what it must hash to. */
export interface KernelDebEntry {
  package: string;
  version: string;
  url: string;
  sha256: string;
  size: number;
}

const isKernelImagePackage = (pkg: string): boolean => /^linux-image-/.test(pkg);

/**
 * Pure: the package that holds `kver`'s vmlinuz and modules among the archive's stanzas:
 * linux-image-<kver>-unsigned (the kernel proper) or linux-image-<kver> where the archive has
 * no unsigned twin; the newest version when several suites hold it.
 */
export function pickKernelDeb(stanzas: ReadonlyArray<{ stanza: Stanza; baseUrl: string }>, kver: string): KernelDebEntry | undefined {
  const names = [`linux-image-${kver}-unsigned`, `linux-image-${kver}`];
  for (const name of names) {
    const found = stanzas
      .filter(({ stanza }) => stanza.get('package') === name)
      .map(({ stanza, baseUrl }) => ({
        package: name,
        version: stanza.get('version') ?? '',
        filename: stanza.get('filename') ?? '',
        sha256: stanza.get('sha256') ?? '',
        size: Number(stanza.get('size') ?? 'NaN'),
        baseUrl,
      }))
      // the index names the file; it must stay a pool/ path of the mirror
      .filter((e) => /^[0-9a-f]{64}$/.test(e.sha256) && Number.isSafeInteger(e.size) && /^pool\/[A-Za-z0-9._+~/-]+\.deb$/.test(e.filename) && !e.filename.includes('..'))
      .sort((a, b) => compareDebianVersions(b.version, a.version));
    const best = found[0];
    if (best) return { package: best.package, version: best.version, url: `${best.baseUrl}/${best.filename}`, sha256: best.sha256, size: best.size };
  }
  return undefined;
}

/** per process, per (release, arch): the kernels of one verify run read each suite's InRelease once */
const stanzaMemo = new Map<string, Promise<Array<{ stanza: Stanza; baseUrl: string }>>>();
function imageStanzas(release: string, debianArch: string, options: IndexStoreOptions): Promise<Array<{ stanza: Stanza; baseUrl: string }>> {
  const key = `${options.cacheDir}\0${release}\0${debianArch}`;
  let pending = stanzaMemo.get(key);
  if (!pending) {
    pending = readImageStanzas(release, debianArch, options);
    stanzaMemo.set(key, pending);
    pending.catch(() => stanzaMemo.delete(key)); // a failure is retried by the next caller
  }
  return pending;
}

/** The linux-image stanzas of every suite of `release` for `debianArch`, from the (signed) indexes, cached by index hash. */
async function readImageStanzas(release: string, debianArch: string, options: IndexStoreOptions): Promise<Array<{ stanza: Stanza; baseUrl: string }>> {
  const spec = RELEASES.find((r) => r.name === release);
  if (!spec) throw new KfarmError('BAD_OPTION', `kfarm knows no release named ${release}`, { context: { release } });
  const out: Array<{ stanza: Stanza; baseUrl: string }> = [];
  for (const { suite, mirror } of spec.suites) {
    const baseUrl = DEFAULT_MIRRORS[mirror];
    const releaseFile = await fetchReleaseFile(baseUrl, suite, options);
    if (!releaseFile) continue;
    const indexPath = `main/binary-${debianArch}/Packages.xz`;
    const entry = releaseFile.sha256.get(indexPath);
    if (!entry) continue;
    const dir = path.join(options.cacheDir, mirror, suite, 'main', `binary-${debianArch}`);
    const cached = path.join(dir, `${entry.sha256}.image-stanzas`);
    let text: string;
    if (existsSync(cached)) text = await readFile(cached, 'utf8');
    else {
      const url = `${baseUrl}/dists/${suite}/${indexPath}`;
      const res = await request(url, { timeoutMs: 300_000 });
      if (res.status !== 200 || createHash('sha256').update(res.body).digest('hex') !== entry.sha256) {
        throw new KfarmError('COMMAND_FAILED', `${url} did not download whole (HTTP ${res.status}, or a checksum not in InRelease)`, {
          context: { url },
          hint: 'The mirror may be mid-update; run the command again.',
        });
      }
      await makeDirs(dir);
      const xzFile = path.join(dir, `.${randomBytes(4).toString('hex')}.xz`);
      await writeFile(xzFile, res.body);
      try {
        const xz = runStream('xz', ['-dc', xzFile]);
        [text] = await Promise.all([keepStanzas(createInterface({ input: xz.stdout, crlfDelay: Infinity }), isKernelImagePackage), xz.done]);
      } finally {
        await rm(xzFile, { force: true });
      }
      for (const old of await readdir(dir)) if (old.endsWith('.image-stanzas')) await rm(path.join(dir, old), { force: true });
      const tmp = `${cached}.${randomBytes(4).toString('hex')}.tmp`;
      await writeFile(tmp, text);
      await rename(tmp, cached);
    }
    for (const stanza of parseStanzas(text)) out.push({ stanza, baseUrl });
  }
  return out;
}

/**
 * The kernel's .deb, downloaded once and kept under `debDir` by its sha256 (the signed index
 * gives it): later boots of that kernel read the cached file, checked again before use.
 */
export async function kernelDeb(input: {
  kernel: string;
  release: string;
  debianArch: string;
  debDir: string;
  index: IndexStoreOptions;
}): Promise<{ entry: KernelDebEntry; file: string } | undefined> {
  const entry = pickKernelDeb(await imageStanzas(input.release, input.debianArch, input.index), input.kernel);
  if (!entry) return undefined;
  const file = path.join(input.debDir, `${entry.sha256}.deb`);
  if (existsSync(file)) {
    const have = createHash('sha256')
      .update(await readFile(file))
      .digest('hex');
    if (have === entry.sha256) return { entry, file };
    await rm(file, { force: true });
  }
  const res = await request(entry.url, { timeoutMs: 600_000 });
  const got = createHash('sha256').update(res.body).digest('hex');
  if (res.status !== 200 || got !== entry.sha256) {
    throw new KfarmError('COMMAND_FAILED', `${entry.url} did not download whole (HTTP ${res.status}, sha256 ${got.slice(0, 12)}… not ${entry.sha256.slice(0, 12)}…)`, {
      context: { url: entry.url },
      hint: 'Run the command again; the mirror may be mid-update.',
    });
  }
  await makeDirs(input.debDir);
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, res.body);
  await rename(tmp, file);
  return { entry, file };
}
