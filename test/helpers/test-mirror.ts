import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import pino from 'pino';
import { parseStanzas } from '../../src/archive/deb822.js';
import { headersPackages, parseDepends } from '../../src/archive/headers-packages.js';
import { compareDebianVersions } from '../../src/archive/debian-version.js';
import { request } from '../../src/archive/http-client.js';
import { DEBIAN_KEYRING, fetchReleaseFile } from '../../src/archive/index-store.js';
import { kernelStanzas } from '../../src/archive/package-stanzas.js';
import { DEFAULT_MIRRORS, RELEASES, type DebianArch, type Mirror, type ReleaseSpec } from '../../src/archive/releases.js';
import { testKeyring } from './test-keyring.js';

/**
 * A Debian mirror on 127.0.0.1 for tests of archive reading and image builds (issue 23's "How to
 * test it without waiting for Debian"): the suites of one release holding only the chosen
 * kernels' packages (their headers, -common, kbuild and compiler, and what those depend on),
 * the real stanzas taken from Debian's own signed indexes; its InRelease, Release and
 * Release.gpg signed with a throwaway key (keyringFile is its public keyring). Pool files are
 * Debian's, fetched on first request and kept under the cache dir by SHA256, so reruns
 * download nothing. A suite without chosen kernels answers 404, as a mirror that lacks it.
 *
 *   url          the archive (--mirror), <base>/debian
 *   securityUrl  the security archive (--security-mirror), <base>/debian-security
 */
export interface TestMirror {
  url: string;
  securityUrl: string;
  keyringFile: string;
  /** every request answered, in order */
  requests: Array<{ method: string; path: string; status: number }>;
  /** adds a kernel (its stanzas in the suite Debian has it in), rewrites and re-signs the indexes */
  addKernel(kernel: string): Promise<void>;
  /** stops offering a kernel (its linux-headers-<kernel> stanzas; what other kernels share stays), rewrites and re-signs the indexes */
  removeKernel(kernel: string): Promise<void>;
  /** stops offering a package (every version of it), as a suite a kernel's dependency has not reached yet; addKernel serves it again */
  withholdPackage(name: string): Promise<void>;
  /** signs the indexes with another key from now on (one kfarm is not told to trust) */
  signWith(signer: 'archive' | 'stranger'): Promise<void>;
  close(): Promise<void>;
}

export interface TestMirrorOptions {
  release: string;
  arch: DebianArch;
  kernels: readonly string[];
  /** where Debian's indexes and pool files are kept; default $KFARM_TEST_MIRROR_CACHE or ~/.cache/kfarm-test-mirror */
  cacheDir?: string;
}

interface ServedFile {
  upstream: string;
  sha256: string;
  size: number;
}

/** One package stanza as Debian's index has it, and where its file comes from. */
interface Pick {
  name: string;
  version: string;
  text: string;
  file: ServedFile;
  filename: string;
}

const logger = pino({ level: 'silent' });

export async function startTestMirror(options: TestMirrorOptions): Promise<TestMirror> {
  const release = RELEASES.find((r) => r.name === options.release);
  if (!release) throw new Error(`no release ${options.release}`);
  const cacheDir = cacheDirOf(options);
  const keys = await testKeyring();
  const debian = new DebianIndexes(release, options.arch, cacheDir);
  /** suite → package/version → stanza */
  const suites = new Map<string, Map<string, Pick>>();
  /** served path (/debian/pool/...) → the file upstream */
  const pool = new Map<string, ServedFile>();
  /** served path (/debian/dists/...) → bytes */
  const dists = new Map<string, Buffer>();
  let signer: 'archive' | 'stranger' = 'archive';
  const requests: TestMirror['requests'] = [];

  const mirrorOf = (suite: string): Mirror => release.suites.find((s) => s.suite === suite)?.mirror ?? 'debian';

  const publish = async () => {
    dists.clear();
    for (const [suite, picks] of suites) {
      const base = `/${mirrorOf(suite)}/dists/${suite}`;
      const stanzas = [...picks.values()].sort((a, b) => a.name.localeCompare(b.name) || compareDebianVersions(a.version, b.version));
      const packages = Buffer.from(stanzas.map((p) => `${p.text.trimEnd()}\n`).join('\n'));
      const xz = Buffer.from((await execa('xz', ['-c', '-6'], { input: packages, encoding: 'buffer', stripFinalNewline: false })).stdout);
      const index = `main/binary-${options.arch}`;
      const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
      const releaseText =
        [
          'Origin: kfarm-test',
          'Label: kfarm-test',
          `Suite: ${suite}`,
          `Codename: ${suite}`,
          `Date: ${new Date().toUTCString().replace('GMT', 'UTC')}`,
          `Architectures: ${options.arch}`,
          'Components: main',
          'Description: kfarm test mirror',
          'SHA256:',
          ` ${sha(packages)} ${packages.length} ${index}/Packages`,
          ` ${sha(xz)} ${xz.length} ${index}/Packages.xz`,
        ].join('\n') + '\n';
      dists.set(`${base}/Release`, Buffer.from(releaseText));
      dists.set(`${base}/InRelease`, await keys.clearsign(releaseText, [signer]));
      dists.set(`${base}/Release.gpg`, await keys.detachSign(releaseText, [signer]));
      dists.set(`${base}/${index}/Packages`, packages);
      dists.set(`${base}/${index}/Packages.xz`, xz);
      for (const p of picks.values()) pool.set(`/${mirrorOf(suite)}/${p.filename}`, p.file);
    }
  };

  const addKernel = async (kernel: string) => {
    const { suite, picks } = await debian.kernelClosure(kernel);
    const served = suites.get(suite) ?? new Map<string, Pick>();
    for (const p of picks) served.set(`${p.name}/${p.version}`, p);
    suites.set(suite, served);
    await publish();
  };

  const downloads = new Map<string, Promise<string>>();
  const poolFile = (file: ServedFile): Promise<string> => {
    let pending = downloads.get(file.sha256);
    if (!pending) {
      pending = cachedDownload(file, path.join(cacheDir, 'pool'));
      downloads.set(file.sha256, pending);
      pending.catch(() => downloads.delete(file.sha256));
    }
    return pending;
  };

  const server = http.createServer((req, res) => {
    const urlPath = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const method = req.method ?? 'GET';
    const answer = (status: number, body?: Buffer, size?: number) => {
      requests.push({ method, path: urlPath, status });
      res.writeHead(status, { 'Content-Length': String(size ?? body?.length ?? 0), 'Content-Type': 'application/octet-stream' });
      res.end(method === 'HEAD' ? undefined : body);
    };
    if (method !== 'GET' && method !== 'HEAD') return answer(405);
    const index = dists.get(urlPath);
    if (index) return answer(200, index);
    const file = pool.get(urlPath);
    if (!file) return answer(404);
    if (method === 'HEAD') return answer(200, undefined, file.size);
    poolFile(file).then(
      async (local) => answer(200, await readFile(local)),
      (err: unknown) => {
        requests.push({ method, path: urlPath, status: 502 });
        res.writeHead(502).end(String(err));
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  for (const kernel of options.kernels) await addKernel(kernel);
  if (suites.size === 0) await publish();

  return {
    url: `${base}/debian`,
    securityUrl: `${base}/debian-security`,
    keyringFile: keys.keyring,
    requests,
    addKernel,
    removeKernel: async (kernel) => {
      for (const picks of suites.values()) for (const [key, p] of picks) if (p.name === `linux-headers-${kernel}`) picks.delete(key);
      await publish();
    },
    withholdPackage: async (name) => {
      for (const picks of suites.values()) for (const [key, p] of picks) if (p.name === name) picks.delete(key);
      await publish();
    },
    signWith: async (who) => {
      signer = who;
      await publish();
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await keys.close();
    },
  };
}

/** The kernels Debian's own indexes offer for one release and arch (newest version per suite), to choose a mirror's from. */
export async function debianKernels(
  options: Omit<TestMirrorOptions, 'kernels'>,
): Promise<Array<{ kernel: string; flavour: string; abi: string; suite: string; version: string; filename: string }>> {
  const release = RELEASES.find((r) => r.name === options.release);
  if (!release) throw new Error(`no release ${options.release}`);
  const indexes = await new DebianIndexes(release, options.arch, cacheDirOf(options)).kernelStanzas();
  return indexes.flatMap((index) =>
    headersPackages(parseStanzas(index.picks.map((p) => p.text).join('\n\n'))).map((k) => ({
      kernel: k.kernel,
      flavour: k.flavour,
      abi: k.abi,
      suite: index.suite,
      version: k.version,
      filename: k.filename,
    })),
  );
}

const cacheDirOf = (options: { cacheDir?: string }): string => options.cacheDir ?? process.env.KFARM_TEST_MIRROR_CACHE ?? path.join(os.homedir(), '.cache', 'kfarm-test-mirror');

/** Debian's real indexes of one release and arch (signatures checked with Debian's keys), read once and cached on disk. */
class DebianIndexes {
  private kernelIndexes: Promise<Array<{ suite: string; mirror: Mirror; picks: Pick[] }>> | undefined;
  private mainIndex: Promise<Map<string, Pick>> | undefined;

  constructor(
    private readonly release: ReleaseSpec,
    private readonly arch: DebianArch,
    private readonly cacheDir: string,
  ) {}

  /** The kernel's headers stanza, in the suite Debian offers it (the newest version), and everything it depends on. */
  async kernelClosure(kernel: string): Promise<{ suite: string; picks: Pick[] }> {
    const name = `linux-headers-${kernel}`;
    let found: { suite: string; pick: Pick; kernelPicks: Pick[] } | undefined;
    for (const index of await this.kernelStanzas()) {
      for (const p of index.picks) {
        if (p.name === name && (!found || compareDebianVersions(p.version, found.pick.version) > 0)) found = { suite: index.suite, pick: p, kernelPicks: index.picks };
      }
    }
    if (!found) throw new Error(`Debian's ${this.release.name} ${this.arch} indexes have no ${name}`);
    const main = await this.main();
    const chosen = new Map<string, Pick>();
    const queue: Pick[] = [found.pick];
    while (queue.length > 0) {
      const p = queue.shift() as Pick;
      if (chosen.has(p.name)) continue;
      chosen.set(p.name, p);
      const stanza = parseStanzas(p.text)[0];
      const depends = [...parseDepends(stanza?.get('depends') ?? ''), ...parseDepends(stanza?.get('pre-depends') ?? '')];
      for (const alternatives of depends) {
        for (const dep of alternatives) {
          const bare = dep.name.replace(/:any$/, '');
          if (bare.startsWith('linux-image-')) continue; // the image builder never installs it
          const pinned = /^=\s*(\S+)$/.exec(dep.relation ?? '')?.[1];
          const candidates = found.kernelPicks.filter((k) => k.name === bare && (!pinned || k.version === pinned));
          const next = candidates.sort((a, b) => compareDebianVersions(b.version, a.version))[0] ?? main.get(bare);
          if (next) {
            queue.push(next);
            break;
          }
        }
      }
    }
    return { suite: found.suite, picks: [...chosen.values()] };
  }

  kernelStanzas(): Promise<Array<{ suite: string; mirror: Mirror; picks: Pick[] }>> {
    this.kernelIndexes ??= (async () => {
      const store = { cacheDir: path.join(this.cacheDir, 'archive'), logger, keyring: DEBIAN_KEYRING };
      const out: Array<{ suite: string; mirror: Mirror; picks: Pick[] }> = [];
      for (const s of this.release.suites) {
        const file = await fetchReleaseFile(DEFAULT_MIRRORS[s.mirror], s.suite, store);
        if (!file) continue;
        const got = await kernelStanzas(DEFAULT_MIRRORS[s.mirror], s.mirror, s.suite, this.arch, file, store);
        if (got) out.push({ suite: s.suite, mirror: s.mirror, picks: picksOf(got.text, DEFAULT_MIRRORS[s.mirror]) });
      }
      return out;
    })();
    return this.kernelIndexes;
  }

  /** the release's main suite's whole Packages index, by package name */
  private main(): Promise<Map<string, Pick>> {
    this.mainIndex ??= (async () => {
      const store = { cacheDir: path.join(this.cacheDir, 'archive'), logger, keyring: DEBIAN_KEYRING };
      const baseUrl = DEFAULT_MIRRORS.debian;
      const file = await fetchReleaseFile(baseUrl, this.release.codename, store);
      const indexPath = `main/binary-${this.arch}/Packages.xz`;
      const entry = file?.sha256.get(indexPath);
      if (!entry) throw new Error(`${baseUrl} has no ${this.release.codename}/${indexPath}`);
      const local = await cachedDownload({ upstream: `${baseUrl}/dists/${this.release.codename}/${indexPath}`, ...entry }, path.join(this.cacheDir, 'indexes'));
      const text = (await execa('xz', ['-dc', local], { maxBuffer: 512 * 1024 * 1024 })).stdout;
      const byName = new Map<string, Pick>();
      for (const p of picksOf(text, baseUrl)) byName.set(p.name, p);
      return byName;
    })();
    return this.mainIndex;
  }
}

function picksOf(text: string, baseUrl: string): Pick[] {
  const picks: Pick[] = [];
  for (const chunk of text.split(/\n\s*\n/)) {
    const name = /^Package:\s*(\S+)/m.exec(chunk)?.[1];
    const version = /^Version:\s*(\S+)/m.exec(chunk)?.[1];
    const filename = /^Filename:\s*(\S+)/m.exec(chunk)?.[1];
    const sha256 = /^SHA256:\s*([0-9a-f]{64})/m.exec(chunk)?.[1];
    const size = /^Size:\s*(\d+)/m.exec(chunk)?.[1];
    if (!name || !version || !filename || !sha256 || !size) continue;
    picks.push({ name, version, text: chunk, filename, file: { upstream: `${baseUrl}/${filename}`, sha256, size: Number(size) } });
  }
  return picks;
}

/** The file under dir/<sha256>, downloaded once and checked against its SHA256. */
async function cachedDownload(file: ServedFile, dir: string): Promise<string> {
  const local = path.join(dir, file.sha256);
  if (existsSync(local)) return local;
  await mkdir(dir, { recursive: true });
  const res = await request(file.upstream, { timeoutMs: 600_000 });
  if (res.status !== 200) throw new Error(`${file.upstream}: HTTP ${res.status}`);
  const got = createHash('sha256').update(res.body).digest('hex');
  if (got !== file.sha256) throw new Error(`${file.upstream}: SHA256 ${got}, the index says ${file.sha256}`);
  const tmp = `${local}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, res.body);
  await rename(tmp, local);
  return local;
}
