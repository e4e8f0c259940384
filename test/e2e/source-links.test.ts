import { randomBytes } from 'node:crypto';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BuildReport } from '../../src/report/report.js';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { packTar } from '../../src/executor/archive.js';
import { runOracle } from '../helpers/dkms-oracle.js';
import { parseDkmsStatus, releaseDkmsImage, type CheckerRelease } from '../helpers/release-dkms.js';
import { fixture, isolatedEnv, kfarm, tempDir, type CliRun } from '../helpers/kfarm-cli.js';

/**
 * A source tree shipping symlinks that lead out of it (issue 9): real Debian DKMS packages ship
 * e.g. `README.gz -> /usr/share/doc/<pkg>/README.gz`, and DKMS copies such links as links and
 * builds. kfarm carries them the same way into the container and the full tarball, and never
 * follows one on the host: the host file links point at has bytes that must appear nowhere.
 */
describe('kfarm build of a source holding links that lead out of it', () => {
  let src: string;
  let out: string;
  let result: CliRun;
  let report: BuildReport;
  let hostDir: string;
  /** bytes only the host has, behind links of the source */
  const secret = `KFARM-HOST-ONLY-${randomBytes(8).toString('hex')}`;
  const hostOsRelease = { text: '' };

  /** every link of the source: path -> target, as written */
  let links: Record<string, string>;

  beforeAll(async () => {
    const base = await tempDir('links-src');
    src = path.join(base, 'links-outside');
    hostDir = path.join(base, 'host-only');
    await mkdir(hostDir);
    await writeFile(path.join(hostDir, 'secret.txt'), `${secret}\n`);
    hostOsRelease.text = await readFile('/etc/os-release', 'utf8');
    // cp -a: the committed README.gz link stays a link
    await execa('cp', ['-a', fixture('links-outside'), src]);
    await mkdir(path.join(src, 'd'));
    // not committed in the fixture: they lead back into the repository, where vitest's glob would follow them
    links = {
      'README.gz': '/usr/share/doc/hello/README.gz',
      up: '../../..',
      'd/l1': '..',
      a: 'd/l1/..',
      'host-only-file': path.join(hostDir, 'secret.txt'), // exists on the host, not in the container
      'host-only-dir': hostDir, // a directory outside: not descended into
      'os-release': '/etc/os-release', // exists on the host and in the container
    };
    for (const [at, target] of Object.entries(links)) if (at !== 'README.gz') await symlink(target, path.join(src, at));
    out = await tempDir('links-out');
    result = await kfarm(['build', src, '--out', out], await isolatedEnv('links'));
    report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
  }, 900_000);

  it('builds every default kernel and exits 0', () => {
    expect(result.exitCode, result.stderr).toBe(0);
    expect(report.module).toBe('links-outside');
    expect(report.kernels.length).toBeGreaterThanOrEqual(2);
    expect(report.kernels.map((k) => [k.kernel, k.verdict])).toEqual(report.kernels.map((k) => [k.kernel, 'built']));
  });

  it('the build in the container sees each link as a link with its target text (the Makefile lists them)', async () => {
    for (const k of report.kernels) {
      const log = await readFile(path.join(out, k.log), 'utf8');
      for (const [at, target] of Object.entries(links)) expect(log, `${k.kernel}: ${at}`).toContain(`kfarm-link ./${at} -> ${target}`);
      expect(log).not.toContain(secret);
    }
  });

  it('the full tarball holds the links as links in dkms_source_tree/, and none of the bytes they lead to', async () => {
    const file = path.join(out, report.fullTarball?.path ?? 'missing');
    const listing = (await execa('tar', ['-tvzf', file])).stdout;
    for (const [at, target] of Object.entries(links)) {
      expect(listing, at).toMatch(new RegExp(`^l\\S+ .* \\./dkms_source_tree/${escape(at)} -> ${escape(target)}$`, 'm'));
    }
    expect(listing).not.toContain('dkms_source_tree/host-only-dir/');
    expect(listing).not.toContain('dkms_source_tree/up/');
    const bytes = gunzipSync(await readFile(file));
    expect(bytes.includes(secret)).toBe(false);
    expect(bytes.includes(hostOsRelease.text)).toBe(false);
  });

  it("Debian's dkms (bookworm 3.0.10) loads the full tarball: links kept as links in /usr/src, the module listed as built", async () => {
    const name = report.fullTarball?.path ?? 'missing';
    const oracle = await runOracle(
      [`dkms ldtarball /in/${name} && echo LOAD_OK`, 'dkms status', 'cd /usr/src/links-outside-1.0 && find . -type l -printf "src-link %p -> %l\\n"'].join('\n'),
      { [name]: await readFile(path.join(out, name)) },
    );
    expect(oracle.output, oracle.output).toContain('LOAD_OK');
    // dkms 3.0.10's ldtarball loads only the first kernel of a full tarball (its `local` of a readonly
    // variable fails for the next ones: "already exists. Skipping"), as for examples/hello
    expect(report.kernels.filter((k) => oracle.output.includes(`links-outside/1.0, ${k.kernel}, x86_64: built`)).length, oracle.output).toBeGreaterThanOrEqual(1);
    for (const [at, target] of Object.entries(links)) expect(oracle.output, oracle.output).toContain(`src-link ./${at} -> ${target}`);
    expect(oracle.output).not.toContain(secret);
  });

  it.each<CheckerRelease>(['debian-11', 'debian-13'])('the %s dkms (bullseye 2.8.4, trixie 3.2.2) loads it too, the links kept as links', async (release) => {
    const name = report.fullTarball?.path ?? 'missing';
    const input = await packTar([
      { path: 'in', type: 'directory', mode: 0o755 },
      { path: `in/${name}`, type: 'file', mode: 0o644, data: await readFile(path.join(out, name)) },
    ]);
    const script = [`dkms ldtarball /in/${name}; echo "@@ldtarball $?"`, 'dkms status', 'cd /usr/src/links-outside-1.0 && find . -type l -printf "src-link %p -> %l\\n"'].join(
      '\n',
    );
    const { output } = await new DockerRuntime().runHelper(await releaseDkmsImage(release), ['bash', '-c', script], input);
    expect(output, output).toMatch(/^@@ldtarball 0$/m);
    const built = parseDkmsStatus(output).filter((l) => l.module === 'links-outside' && l.version === '1.0' && l.state === 'built');
    expect(built.length, output).toBeGreaterThanOrEqual(1);
    for (const [at, target] of Object.entries(links)) expect(output, output).toContain(`src-link ./${at} -> ${target}`);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
