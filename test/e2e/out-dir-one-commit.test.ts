import { watch } from 'node:fs';
import { lstat, mkdir, readdir, readFile, symlink } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { debian12Kernels, example, fixture, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';

/**
 * One writer for the out dir, through the real CLI: a command changes --out once, at its end
 * (every file renamed in, report.json after the files it names, SHA256SUMS last and once), and a
 * command that fails part-way leaves --out byte for byte as it was: `kfarm pack --format
 * bmdeb,kmod-rpm` whose second packer cannot run (no rpmbuild) used to leave bmdeb/ replaced.
 */
const { k61, k612 } = await debian12Kernels();
let env: Record<string, string>;
let out: string;

/** every top-level name of `dir` that changed while `run` ran, in order (the stage's own hidden dir left out) */
async function changesDuring(dir: string, run: () => Promise<void>): Promise<string[]> {
  const names: string[] = [];
  const watcher = watch(dir, (_, name) => {
    if (name && !name.startsWith('.kfarm-staging-')) names.push(name);
  });
  try {
    await run();
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    watcher.close();
  }
  return names;
}

/** Every entry below `dir`, hidden ones too: type, bytes, inode and mtime. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir, { recursive: true })).sort()) {
    const p = path.join(dir, name);
    const s = await lstat(p);
    out[name] = `${
      s.isFile()
        ? createHash('sha256')
            .update(await readFile(p))
            .digest('hex')
        : s.isDirectory()
          ? 'dir'
          : 'other'
    } ${s.ino} ${s.mtimeMs}`;
  }
  return out;
}

beforeAll(async () => {
  env = await isolatedEnv('one-commit');
  out = await tempDir('one-commit');
  const first = await kfarm(['build', example('hello'), '-k', k61, '-o', out], env);
  expect(first.exitCode, first.stderr).toBe(0);
}, 900_000);

describe('one command, one commit', () => {
  it('`kfarm build --format bmdeb`: report.json and SHA256SUMS each replaced once, SHA256SUMS last (report.json was written twice)', async () => {
    let r = { exitCode: -1, stderr: '' };
    const changed = await changesDuring(out, async () => {
      r = await kfarm(['build', example('hello'), '-k', k61, '-o', out, '--format', 'bmdeb'], env);
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(changed.filter((n) => n === 'report.json')).toEqual(['report.json']);
    expect(changed.filter((n) => n === 'SHA256SUMS')).toEqual(['SHA256SUMS']);
    expect(changed.at(-1)).toBe('SHA256SUMS');
    expect((await readdir(out)).filter((n) => n.startsWith('.kfarm-staging-'))).toEqual([]);
    const check = await execa('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: out, reject: false });
    expect(check.exitCode, check.stderr).toBe(0);
    expect(check.stdout).toContain(`bmdeb/hello-modules-${k61}_1.0.0_amd64.deb: OK`);
  });

  it('`kfarm build --format bmdeb --verify load`: one commit for the whole command (report.json was written three times, SHA256SUMS twice)', async () => {
    // a kernel the module excludes: the load check has nothing to boot, so this stays quick
    const dir = await tempDir('one-commit-verify');
    let r = { exitCode: -1, stderr: '' };
    const changed = await changesDuring(dir, async () => {
      r = await kfarm(['build', fixture('exclusive-61'), '-k', k612, '-o', dir, '--format', 'bmdeb', '--verify', 'load', '--accel', 'tcg', '--allow-unverified'], env);
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(changed.filter((n) => n === 'report.json')).toEqual(['report.json']);
    expect(changed.filter((n) => n === 'SHA256SUMS')).toEqual(['SHA256SUMS']);
    expect(changed.at(-1)).toBe('SHA256SUMS');
    const report = JSON.parse(await readFile(path.join(dir, 'report.json'), 'utf8')) as { kernels: Array<{ load?: { verdict: string } }> };
    expect(report.kernels.map((k) => k.load?.verdict)).toEqual(['not-verified']);
    const check = await execa('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: dir, reject: false });
    expect(check.exitCode, check.stderr).toBe(0);
  });

  it('`kfarm pack --format bmdeb,kmod-rpm` failing at its second format: --out unchanged, byte for byte', async () => {
    // a PATH with every tool but rpmbuild: bmdeb packs, then kmod-rpm cannot
    const bin = await tempDir('no-rpmbuild');
    const seen = new Set<string>();
    for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        if (name === 'rpmbuild' || seen.has(name)) continue;
        seen.add(name);
        await symlink(path.join(dir, name), path.join(bin, name)).catch(() => undefined);
      }
    }
    await mkdir(path.join(out, 'bmdeb'), { recursive: true });
    const before = await snapshot(out);
    const r = await kfarm(['pack', out, '--format', 'bmdeb,kmod-rpm'], { ...env, PATH: bin });
    expect(r.exitCode, r.stderr).not.toBe(0);
    expect(r.stderr).toContain('rpmbuild');
    expect(await snapshot(out)).toEqual(before);
  });
});
