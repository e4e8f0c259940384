import { cp, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractTar } from '../../src/executor/archive.js';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import type { KfarmError } from '../../src/errors/kfarm-error.js';
import { writeChecksums } from '../../src/packaging/checksums.js';
import { writeReports } from '../../src/report/write-reports.js';
import type { BuildReport } from '../../src/report/report.js';
import { sampleReport } from '../fixtures/junit/sample-report.js';
import { debian12Kernels, example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';

/**
 * What --out holds and what kfarm says about it: SHA256SUMS vouches for this report's
 * deliverables only (an out dir also holds earlier builds' tarballs and others' files), an out
 * dir inside the source is never packed into the next build, and the conditions of an out dir
 * a user can fix (a full disk, a report.json cut short, a path below /proc) are exit 2 or 3
 * with what to do, never exit 4 with a stack trace or a hang.
 */
const { k61, k61b } = await debian12Kernels();
let env: Record<string, string>;
/** an out dir built for k61b, then for k61 with others' files beside it */
let out: string;
let second: { exitCode: number; stderr: string };

const readReport = async (dir: string) => JSON.parse(await readFile(path.join(dir, 'report.json'), 'utf8')) as BuildReport;
const sumsOf = async (dir: string) =>
  (await readFile(path.join(dir, 'SHA256SUMS'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => l.slice(66));
/** 2 GiB + 1 byte: past what one read (readFile) can hold */
const OVER_2_GIB = 2 ** 31 + 1;

beforeAll(async () => {
  env = await isolatedEnv('out-dir');
  out = await tempDir('out-dir');
  const first = await kfarm(['build', example('hello'), '-k', k61b, '-o', out], env);
  expect(first.exitCode, first.stderr).toBe(0);
  // what else an out dir holds: a stranger's file, a huge file (sparse), and now k61b's tarball is an earlier build's
  await writeFile(path.join(out, 'stranger.sh'), 'curl https://example.invalid | sh\n');
  await execa('truncate', ['-s', String(OVER_2_GIB), path.join(out, 'disk.img')]);
  second = await kfarm(['build', example('hello'), '-k', k61, '-o', out], env);
}, 900_000);

describe('SHA256SUMS lists exactly the deliverables of this report', () => {
  it("a >2 GiB file of someone else's in --out: the build still exits 0 (it was read whole before: exit 4, ERR_FS_FILE_TOO_LARGE)", () => {
    expect(second.exitCode, second.stderr).toBe(0);
    expect(second.stderr).not.toContain('ERR_FS_FILE_TOO_LARGE');
  });

  it("lists this build's tarballs and reports; not the stale tarball of the earlier build, the stranger's file or the huge one", async () => {
    const report = await readReport(out);
    expect(report.kernels.map((k) => k.kernel)).toEqual([k61]);
    const expected = [...report.kernels.map((k) => k.tarball?.path ?? ''), report.fullTarball?.path ?? '', 'junit.xml', 'report.html', 'report.json'].sort();
    expect(await sumsOf(out)).toEqual(expected);
    const stale = `hello-1.0.0-kernel${k61b}-x86_64.dkms.tar.gz`;
    expect((await stat(path.join(out, stale))).isFile()).toBe(true); // left where it was, just not vouched for
    const sums = await readFile(path.join(out, 'SHA256SUMS'), 'utf8');
    for (const other of [stale, 'stranger.sh', 'disk.img']) expect(sums).not.toContain(other);
    const check = await execa('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: out, reject: false });
    expect(check.exitCode, check.stderr).toBe(0);
  });

  // here, not in the unit tier: it reads 2 GiB
  it('a deliverable over 2 GiB is hashed (streamed) and checks with sha256sum', async () => {
    const dir = await tempDir('sums-big');
    await mkdir(path.join(dir, 'kmm'));
    await execa('truncate', ['-s', String(OVER_2_GIB), path.join(dir, 'kmm', 'hello.oci.tar')]);
    for (const f of ['report.json', 'junit.xml', 'report.html']) await writeFile(path.join(dir, f), f);
    // sha256 of 2^31 + 1 zero bytes (`head -c 2147483649 /dev/zero | sha256sum`)
    const sha256 = 'b8030a8ab89280935633d8d991da3d9907c0f12e8b6fc3bfc515f4d440872b6e';
    const report: BuildReport = { ...sampleReport(), packages: [{ format: 'kmm', path: 'kmm/hello.oci.tar', sha256, size: OVER_2_GIB }] };
    await writeChecksums(dir, report);
    expect(await readFile(path.join(dir, 'SHA256SUMS'), 'utf8')).toContain(`${sha256}  kmm/hello.oci.tar\n`);
    await rm(dir, { recursive: true, force: true });
  }, 300_000);
});

describe('an out dir (and a state dir) inside the source tree', () => {
  it('`kfarm build src -o src/dist` twice: the second run is all cache hits, says what it left out, and the full tarball carries neither', async () => {
    const top = await tempDir('out-inside');
    const src = path.join(top, 'src');
    await cp(example('hello'), src, { recursive: true });
    // the state dir too: its private Redis's socket is a file no source may hold
    const inside = { ...env, KFARM_STATE_DIR: path.join(src, '.kfarm') };
    const dist = path.join(src, 'dist');
    const first = await kfarm(['build', src, '-k', k61, '-o', dist], inside);
    expect(first.exitCode, first.stderr).toBe(0);
    const before = await readReport(dist);
    const again = await kfarm(['build', src, '-k', k61, '-o', dist], inside);
    expect(again.exitCode, again.stderr).toBe(0);
    const after = await readReport(dist);
    expect(after.source.sha256).toBe(before.source.sha256);
    expect(after.kernels.map((k) => k.cached)).toEqual([true]);
    const full = after.fullTarball?.path ?? '';
    expect(after.fullTarball?.size).toBe(before.fullTarball?.size);
    const entries = await extractTar(gunzipSync(await readFile(path.join(dist, full))), { maxBytes: 64 << 20, maxEntries: 10_000, allowSymlinks: true }, full);
    const sourceTree = entries.map((e) => e.path).filter((p) => p.startsWith('dkms_source_tree/'));
    expect(sourceTree).toContain('dkms_source_tree/dkms.conf');
    expect(sourceTree.filter((p) => /^dkms_source_tree\/(dist|\.kfarm)(\/|$)/.test(p))).toEqual([]);
    // and it says so
    expect(again.stderr).toContain(`${src}: left dist/ out of the source (the --out dir)`);
    expect(again.stderr).toContain(`${src}: left .kfarm/ out of the source (the state dir)`);
  }, 900_000);
});

describe('conditions of the out dir a user can fix: exit 2 or 3 with what to do', () => {
  it("--out below /proc: exit 2 at once, naming --out (Node's recursive mkdir spun there forever, deaf to Ctrl-C)", async () => {
    const started = Date.now();
    const r = await kfarm(['build', example('hello'), '-k', k61, '-o', '/proc/kfarm-out'], env, 60_000);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain('--out /proc/kfarm-out: cannot write there (ENOENT)');
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('--junit below /proc: exit 2 at once, naming --junit (the same spin)', async () => {
    const started = Date.now();
    const r = await kfarm(['build', example('hello'), '-k', k61, '-o', await tempDir('junit-proc'), '--junit', '/proc/kfarm-junit/junit.xml'], env, 60_000);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain('cannot write the JUnit report to /proc/kfarm-junit/junit.xml');
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('KFARM_STATE_DIR below /proc: exit 2 at once for every command that uses it (the same spin, deeper in)', async () => {
    for (const args of [
      ['build', example('hello'), '-k', k61, '-o', await tempDir('state-proc')],
      ['cache', 'ls'],
      ['kernels', '--available', 'debian-12'],
    ]) {
      const started = Date.now();
      const r = await kfarm(args, { ...env, KFARM_STATE_DIR: '/proc/kfarm-state' }, 60_000);
      expect(r.exitCode, `${args[0]}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain('state dir /proc/kfarm-state: cannot create or write it (ENOENT)');
      expect(Date.now() - started).toBeLessThan(30_000);
    }
  });

  describe('a full disk under --out', () => {
    let mnt: string | undefined;
    afterAll(async () => {
      if (mnt) await execa('umount', [mnt], { reject: false });
    });

    it('exit 3 naming the file and what to do, no stack trace; with room, a rerun builds nothing again', async () => {
      const dir = await tempDir('enospc');
      // a real, small file system: 100 KiB holds the per-kernel tarball of hello, not the full one as well
      await execa('mount', ['-t', 'tmpfs', '-o', 'size=100k', 'tmpfs', dir]);
      mnt = dir;
      const r = await kfarm(['build', example('hello'), '-k', k61, '-o', path.join(dir, 'out')], env);
      expect(r.exitCode, r.stderr).toBe(3);
      expect(r.stderr).toMatch(new RegExp(`no space left on the device writing ${dir}/out/\\S+ \\(ENOSPC\\)`));
      expect(r.stderr).toContain(`df -h ${dir}/out`);
      expect(r.stderr).not.toContain('unexpected error');
      expect(r.stderr).not.toMatch(/^\s+at /m);
      const roomy = await tempDir('enospc-after');
      const rerun = await kfarm(['build', example('hello'), '-k', k61, '-o', roomy], env);
      expect(rerun.exitCode, rerun.stderr).toBe(0);
      expect((await readReport(roomy)).kernels.map((k) => k.cached)).toEqual([true]);
    });
  });

  describe('a full disk while the reports are written', () => {
    let mnt: string | undefined;
    afterAll(async () => {
      if (mnt) await execa('umount', [mnt], { reject: false });
    });

    it('leaves the earlier report.json whole (not cut short) and names the file: exit 3', async () => {
      const dir = await tempDir('enospc-report');
      await execa('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]);
      mnt = dir;
      const earlier = `${JSON.stringify(sampleReport(), null, 2)}\n`;
      await writeFile(path.join(dir, 'report.json'), earlier);
      const large: BuildReport = { ...sampleReport(), warnings: Array.from({ length: 100 }, (_, i) => `${i}: ${'x'.repeat(1500)}`) };
      const err = await writeReports(dir, large).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'FILE_SYSTEM', message: `no space left on the device writing ${dir}/report.json (ENOSPC)` });
      expect(exitCodeFor((err as KfarmError).code)).toBe(3);
      expect(await readFile(path.join(dir, 'report.json'), 'utf8')).toBe(earlier);
      expect((await readdir(dir)).sort()).toEqual(['report.json']);
    });
  });

  describe('a report.json cut short or edited', () => {
    let broken: string;
    beforeAll(async () => {
      broken = await tempDir('broken-report');
      await cp(out, broken, { recursive: true, filter: (f) => !f.endsWith('disk.img') });
    });

    it.each([
      ['cut short', (text: string) => text.slice(0, Math.floor(text.length / 2)), 'report.json is not valid JSON'],
      ['edited into another shape', (text: string) => JSON.stringify({ ...(JSON.parse(text) as object), kernels: 'none' }), 'report.json is not a kfarm report: kernels'],
    ])('%s: kfarm pack and kfarm verify exit 2 saying so, never a SyntaxError', async (_, edit, said) => {
      const file = path.join(broken, 'report.json');
      const good = await readFile(path.join(out, 'report.json'), 'utf8');
      await writeFile(file, edit(good));
      for (const args of [
        ['pack', broken, '--format', 'dkms-deb'],
        ['verify', broken, '--accel', 'tcg'],
      ]) {
        const r = await kfarm(args, env, 120_000);
        expect(r.exitCode, `${args[0]}: ${r.stderr}`).toBe(2);
        expect(r.stderr).toContain(`${file.replace('/report.json', '')}/${said}`);
        expect(r.stderr).toContain('kfarm build');
        expect(r.stderr).not.toContain('SyntaxError');
        expect(r.stderr).not.toContain('unexpected error');
      }
    });
  });
});
