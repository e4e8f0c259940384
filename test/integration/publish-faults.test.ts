import { createHash } from 'node:crypto';
import { cp, mkdir, readdir, readFile, readlink, rm, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { releaseSha256 } from '../../src/publish/apt-by-hash.js';
import { publishApt } from '../../src/publish/apt-repo.js';
import { publishDnf } from '../../src/publish/dnf-repo.js';
import { debian12Kernels, example, isolatedEnv, kfarm, KFARM_BIN, tempDir } from '../helpers/kfarm-cli.js';
import { repoTestKeys, type RepoTestKeys } from '../helpers/repo-test-key.js';

/**
 * The publishers' promise when a publish stops half way: the disk filling up (a tmpfs of a few
 * MB, filled to leave a little room), or the process killed with SIGKILL at points through the
 * publish. Afterwards the repository a reader sees is the one before, complete and signed (gpgv
 * on InRelease / repomd.xml.asc, every file an index names there with its size and sha256), and
 * the next publish succeeds. Plus a reader polling an APT repository during a publish (the DNF
 * one is in publish-dnf.test.ts). Real packages: hello built for two debian-12 kernels.
 */
const { k61b: K_OLD, k61: K_NEW } = await debian12Kernels();
const logger = pino({ level: 'silent' });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let keys: RepoTestKeys;
let dir: string;
let outOld: string;
let outNew: string;
let baseApt: string; // an APT repository holding K_OLD's packages
let baseDnf: string; // a DNF repository holding K_OLD's packages
const mounts: string[] = [];

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** A file a reader needs: missing, or other bytes than the index says. */
async function checkFile(file: string, size: number | undefined, sha256: string, why: string): Promise<string[]> {
  const data = await readFile(file).catch(() => undefined);
  if (data === undefined) return [`${why}: ${file} missing`];
  if (size !== undefined && data.length !== size) return [`${why}: ${file} has ${data.length} bytes, not ${size}`];
  if (sha(data) !== sha256) return [`${why}: ${file} has another sha256`];
  return [];
}

/** Pure: `Filename`, `Size`, `SHA256` of each stanza of a Packages index. */
function packagesEntries(text: string): Array<{ filename: string; size: number; sha256: string }> {
  return text
    .split(/\n\n+/)
    .filter((s) => s.trim() !== '')
    .map((s) => ({
      filename: /^Filename: (.+)$/m.exec(s)?.[1] ?? '(no Filename)',
      size: Number(/^Size: (\d+)$/m.exec(s)?.[1]),
      sha256: /^SHA256: ([0-9a-f]{64})$/m.exec(s)?.[1] ?? '(no SHA256)',
    }));
}

/**
 * An APT repository as a client reads it: each suite's InRelease verified by gpgv with the
 * repository key alone, every index it names there with its size and sha256, and every pool
 * file each Packages names likewise. Returns the problems (none: valid). `signatures: false`
 * skips gpgv, for a reader polling fast.
 */
async function aptProblems(repo: string, signatures = true, asClient = false): Promise<string[]> {
  const problems: string[] = [];
  const dists = path.join(repo, 'dists');
  const suites = await readdir(dists).catch(() => undefined);
  if (!suites || suites.length === 0) return [`${dists}: no suites`];
  for (const suite of suites) {
    const inRelease = path.join(dists, suite, 'InRelease');
    if (signatures) {
      const gpgv = await execa('gpgv', ['--keyring', keys.keyring, inRelease], { reject: false });
      if (gpgv.exitCode !== 0) problems.push(`${inRelease}: gpgv: ${String(gpgv.stderr).trim()}`);
    }
    const text = await readFile(inRelease, 'utf8').catch(() => undefined);
    if (text === undefined) {
      problems.push(`${inRelease} missing`);
      continue;
    }
    const entries = releaseSha256(text);
    if (entries.length === 0) problems.push(`${inRelease} names no index`);
    for (const e of entries) {
      // a client that finds a Packages.gz need not find Packages: apt asks for one of them
      const direct = path.join(dists, suite, e.path);
      if (!(await exists(direct)) && entries.some((o) => o !== e && o.path.startsWith(`${e.path}.`))) continue;
      // by its hash too (Acquire-By-Hash): what apt fetches, so a publish swapping dists between
      // its InRelease and its indexes does not hand it newer ones; a client reading meanwhile
      // (asClient) reads only those
      const byHash = path.join(dists, suite, path.dirname(e.path), 'by-hash', 'SHA256', e.sha256);
      problems.push(...(await checkFile(byHash, e.size, e.sha256, `${suite}/InRelease by hash`)));
      const file = asClient ? byHash : direct;
      if (!asClient) problems.push(...(await checkFile(file, e.size, e.sha256, `${suite}/InRelease`)));
      if (path.basename(e.path) === 'Packages' && (await exists(file))) {
        for (const p of packagesEntries(await readFile(file, 'utf8'))) problems.push(...(await checkFile(path.join(repo, p.filename), p.size, p.sha256, e.path)));
      }
    }
  }
  return problems;
}

/** A DNF repository as dnf reads it: repomd.xml.asc verified, every data file repomd.xml names and every package primary names there with its sha256. */
async function dnfProblems(repo: string, signatures = true): Promise<string[]> {
  const problems: string[] = [];
  const repomdFile = path.join(repo, 'repodata/repomd.xml');
  if (signatures) {
    const gpgv = await execa('gpgv', ['--keyring', keys.keyring, `${repomdFile}.asc`, repomdFile], { reject: false });
    if (gpgv.exitCode !== 0) problems.push(`repomd.xml.asc: gpgv: ${String(gpgv.stderr).trim()}`);
  }
  const repomd = await readFile(repomdFile, 'utf8');
  const data = [
    ...repomd.matchAll(/<data type="(\w+)">[\s\S]*?<checksum type="sha256">([0-9a-f]{64})<\/checksum>[\s\S]*?<location href="([^"]+)"\/>[\s\S]*?<size>(\d+)<\/size>/g),
  ].map((m) => ({
    type: m[1]!,
    sha256: m[2]!,
    href: m[3]!,
    size: Number(m[4]),
  }));
  if (!data.some((d) => d.type === 'primary')) problems.push('repomd.xml names no primary');
  for (const d of data) problems.push(...(await checkFile(path.join(repo, d.href), d.size, d.sha256, 'repomd.xml')));
  const primary = data.find((d) => d.type === 'primary');
  if (primary && (await exists(path.join(repo, primary.href)))) {
    const xml = gunzipSync(await readFile(path.join(repo, primary.href))).toString('utf8');
    const pkgs = [...xml.matchAll(/<checksum type="sha256" pkgid="YES">([0-9a-f]{64})<\/checksum>[\s\S]*?<size package="(\d+)"[\s\S]*?<location href="([^"]+)"\/>/g)];
    if (pkgs.length === 0) problems.push('primary names no package');
    for (const m of pkgs) problems.push(...(await checkFile(path.join(repo, m[3]!), Number(m[2]), m[1]!, 'primary')));
  }
  return problems;
}

/** What a reader of the repository sees: the files below `dists` (APT, through its symlink) or `repodata` (DNF), and the packages, path → sha256. */
async function readerView(repo: string, kind: 'apt' | 'dnf'): Promise<Record<string, string>> {
  const view: Record<string, string> = {};
  const roots = kind === 'apt' ? ['dists', 'pool'] : ['repodata', 'Packages'];
  for (const root of roots) {
    const abs = path.join(repo, root);
    const real = kind === 'apt' && root === 'dists' ? path.resolve(repo, await readlink(abs)) : abs;
    for (const e of await readdir(real, { recursive: true, withFileTypes: true })) {
      if (!e.isFile()) continue;
      const f = path.join(e.parentPath, e.name);
      view[`${root}/${path.relative(real, f)}`] = sha(await readFile(f));
    }
  }
  return view;
}

/** The files of `before` with the same bytes in `after` (a publish may add files; it must change or remove none a reader of `before` uses). */
function changedOrGone(before: Record<string, string>, after: Record<string, string>): string[] {
  return Object.keys(before).filter((f) => after[f] !== before[f]);
}

const publishTo = (kind: 'apt' | 'dnf', repo: string, outDirs: string[]) =>
  kind === 'apt' ? publishApt({ repoDir: repo, outDirs, keyFile: keys.plain, logger }) : publishDnf({ repoDir: repo, outDirs, key: { keyFile: keys.plain }, logger });

const problemsOf = (kind: 'apt' | 'dnf', repo: string, signatures = true) => (kind === 'apt' ? aptProblems(repo, signatures) : dnfProblems(repo, signatures));

/** does the repository's index name K_NEW's package */
async function hasNew(kind: 'apt' | 'dnf', repo: string): Promise<boolean> {
  if (kind === 'apt') {
    const packages = await readFile(path.join(repo, 'dists/bookworm/main/binary-amd64/Packages'), 'utf8');
    return packages.includes(`Package: hello-modules-${K_NEW}\n`);
  }
  const repomd = await readFile(path.join(repo, 'repodata/repomd.xml'), 'utf8');
  const href = /<location href="(repodata\/[^"]+-primary\.xml\.gz)"/.exec(repomd)?.[1] ?? '';
  return gunzipSync(await readFile(path.join(repo, href)))
    .toString('utf8')
    .includes(`kmod-hello-${K_NEW}-1.0.0-1.x86_64.rpm`);
}

beforeAll(async () => {
  dir = await tempDir('publish-faults');
  keys = await repoTestKeys();
  const env = await isolatedEnv('publish-faults');
  outOld = path.join(dir, 'out-old');
  outNew = path.join(dir, 'out-new');
  for (const [out, k] of [
    [outOld, K_OLD],
    [outNew, K_NEW],
  ] as const) {
    const build = await kfarm(['build', example('hello'), '--out', out, '--kernels', k, '--format', 'bmdeb,dkms-deb,kmod-rpm,dkms-rpm'], env);
    expect(build.exitCode, build.stderr).toBe(0);
  }
  baseApt = path.join(dir, 'base-apt');
  baseDnf = path.join(dir, 'base-dnf');
  await publishTo('apt', baseApt, [outOld]);
  await publishTo('dnf', baseDnf, [outOld]);
  expect(await aptProblems(baseApt)).toEqual([]);
  expect(await dnfProblems(baseDnf)).toEqual([]);
}, 900_000);

afterAll(async () => {
  for (const m of mounts) await execa('umount', ['-l', m], { reject: false });
  await keys?.close();
});

/** a copy of a base repository (symlinks as they are) */
async function copyOf(base: string, to: string): Promise<string> {
  await rm(to, { recursive: true, force: true });
  await cp(base, to, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  return to;
}

describe.each(['apt', 'dnf'] as const)('%s publisher, the disk filling mid-publish', (kind) => {
  it('fails with the full-disk error, leaves the repository as it was (signed, every named file there), and publishes once there is room', async () => {
    const mnt = path.join(dir, `tmpfs-${kind}`);
    await mkdir(mnt);
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', mnt]);
    mounts.push(mnt);
    const repo = path.join(mnt, 'repo');
    const fill = path.join(mnt, 'fill');
    const outcomes: string[] = [];
    let failures = 0;
    // room left for the publish, from none to enough: each fails somewhere else, until one fits
    for (const roomKb of [0, 8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 2048, 4096]) {
      await rm(fill, { force: true });
      await copyOf(kind === 'apt' ? baseApt : baseDnf, repo);
      const before = await readerView(repo, kind);
      const fs = await statfs(mnt);
      const free = fs.bavail * fs.bsize;
      await execa('fallocate', ['-l', String(Math.max(4096, free - roomKb * 1024)), fill]);
      const error = await publishTo(kind, repo, [outNew]).then(
        () => undefined,
        (err: unknown) => err,
      );
      if (error === undefined) {
        outcomes.push(`${roomKb} KB: published`);
        expect(await problemsOf(kind, repo)).toEqual([]);
        expect(await hasNew(kind, repo)).toBe(true);
        break;
      }
      failures++;
      outcomes.push(`${roomKb} KB: ${String((error as Error).message).slice(0, 160)}`);
      expect(isKfarmError(error) && error.code, (error as Error).message).toBe('FILE_SYSTEM');
      expect(String((error as Error).message)).toMatch(/no space left on the device/);
      // it names where it was writing (the repository), not a package it was reading
      expect(String((error as Error).message)).toContain(`writing ${repo}`);
      // the repository as it was: valid, signed, and what a reader sees unchanged
      expect(await problemsOf(kind, repo), `${roomKb} KB`).toEqual([]);
      expect(changedOrGone(before, await readerView(repo, kind)), `${roomKb} KB`).toEqual([]);
      expect(await hasNew(kind, repo)).toBe(false);
      // room again: the next publish succeeds (nothing the failed one left behind stands in its way)
      await rm(fill, { force: true });
      await publishTo(kind, repo, [outNew]);
      expect(await problemsOf(kind, repo), `${roomKb} KB, then room`).toEqual([]);
      expect(await hasNew(kind, repo)).toBe(true);
    }
    console.log(`[publish-faults] ${kind} disk full:\n  ${outcomes.join('\n  ')}`);
    expect(failures).toBeGreaterThan(3);
    expect(outcomes.at(-1)).toMatch(/published/);
  }, 600_000);
});

describe('APT publisher, a reader during a publish', () => {
  it('a reader polling InRelease, each index it names and each pool file the Packages name never finds one missing or with another hash', async () => {
    const repo = await copyOf(baseApt, path.join(dir, 'polled-apt'));
    let done = false;
    let reads = 0;
    const seen: string[] = [];
    const reader = (async () => {
      while (!done) {
        seen.push(...(await aptProblems(repo, false, true)));
        reads++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (const outs of [[outNew], [outOld, outNew], [outNew], [outOld]]) await publishTo('apt', repo, outs);
    done = true;
    await reader;
    expect(seen).toEqual([]);
    expect(reads).toBeGreaterThan(5);
    expect(await hasNew('apt', repo)).toBe(true);
  }, 300_000);
});

describe.each(['apt', 'dnf'] as const)('%s publisher, killed mid-publish', (kind) => {
  it('SIGKILL at points through a publish (kfarm publish in a child process) leaves the repository valid; the next publish succeeds (the dead holder left no lock)', async () => {
    const base = kind === 'apt' ? baseApt : baseDnf;
    const env = { ...(await isolatedEnv(`publish-faults-kill-${kind}`)) };
    // how long a whole publish takes here, so that the kills fall through it
    const timed = await copyOf(base, path.join(dir, `kill-${kind}-timed`));
    const t0 = Date.now();
    const whole = await kfarm(['publish', outNew, `--${kind}`, timed, '--repo-key', keys.plain], env);
    const wholeMs = Date.now() - t0;
    expect(whole.exitCode, whole.stderr).toBe(0);
    expect(await hasNew(kind, timed)).toBe(true);
    // kill points: moments through the publish, and the moments its steps begin (seen from outside)
    const moments = [1, 2, 3, 4, 5, 6, 7].map((i) => ({ name: `${Math.round((wholeMs * i) / 8)} ms`, at: Math.round((wholeMs * i) / 8) }));
    const steps: Array<{ name: string; seen: (repo: string) => Promise<boolean> }> =
      kind === 'apt'
        ? [
            { name: 'reprepro running (its db/lockfile)', seen: (r) => exists(path.join(r, '.kfarm/reprepro/db/lockfile')) },
            { name: 'the new generation being copied', seen: (r) => exists(path.join(r, 'generations/2')) },
          ]
        : [
            { name: 'the stage made', seen: async (r) => (await readdir(r)).some((n) => n.startsWith('.kfarm-dnf-stage-')) },
            { name: 'the signed package placed', seen: (r) => exists(path.join(r, `Packages/kmod-hello-${K_NEW}-1.0.0-1.x86_64.rpm`)) },
          ];
    const outcomes: string[] = [];
    let killed = 0;
    for (const [i, point] of [...moments, ...steps].entries()) {
      const repo = await copyOf(base, path.join(dir, `kill-${kind}-${i}`));
      const before = await readerView(repo, kind);
      // its own process group, killed whole: kfarm and the reprepro, gpg or createrepo_c it runs,
      // as a host's OOM killer or `systemctl kill` of its unit would
      const child = execa('node', [KFARM_BIN, 'publish', outNew, `--${kind}`, repo, '--repo-key', keys.plain], {
        env,
        reject: false,
        detached: true,
        cwd: path.dirname(path.dirname(KFARM_BIN)),
      });
      if ('at' in point) await new Promise((r) => setTimeout(r, point.at));
      else while (child.exitCode === null && !(await point.seen(repo))) await new Promise((r) => setTimeout(r, 1));
      const wasRunning = child.exitCode === null;
      if (wasRunning) process.kill(-child.pid!, 'SIGKILL');
      const result = await child;
      if (wasRunning && result.signal === 'SIGKILL') killed++;
      // a step's moment must have been caught: otherwise this point tested nothing
      if (!('at' in point)) expect(result.signal, `${point.name}: ${result.stderr}`).toBe('SIGKILL');
      outcomes.push(`${point.name}: ${result.signal ?? `exit ${result.exitCode}`}${(await hasNew(kind, repo)) ? ', published' : ''}`);
      expect(await problemsOf(kind, repo), `killed at ${point.name}`).toEqual([]);
      if (!(await hasNew(kind, repo))) expect(changedOrGone(before, await readerView(repo, kind)), `killed at ${point.name}`).toEqual([]);
      // the next publish: not blocked by the dead one's locks, not tripped by what it left
      await publishTo(kind, repo, [outNew]);
      expect(await problemsOf(kind, repo), `after the kill at ${point.name}`).toEqual([]);
      expect(await hasNew(kind, repo)).toBe(true);
    }
    console.log(`[publish-faults] ${kind} a whole publish ${wholeMs} ms; killed:\n  ${outcomes.join('\n  ')}`);
    expect(killed).toBeGreaterThan(5);
  }, 600_000);
});
