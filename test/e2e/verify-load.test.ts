import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { rootLogger } from '../../src/logging/logger.js';
import { readPackInputs } from '../../src/packaging/pack-input.js';
import type { AvailableKernel } from '../helpers/matrix-checks.js';
import type { BuildReport, KernelReport } from '../../src/report/report.js';
import { verifyContext, verifyKernel } from '../../src/verify/verify-kernel.js';
import { debian12Kernels, example, fixture, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';

/**
 * `--verify load` end to end with real QEMU and Debian's own kernels from the archive: each
 * built kernel boots in a hardened container of kfarm/verify, the modules load in the guest,
 * and the report says loaded / load-failed (why) / not-verified. Boots are KVM where the host's
 * KVM can run a guest, TCG otherwise (the report says which).
 */
const { k61, k61b, k612 } = await debian12Kernels();
const amd64 = [k61b, k61, k612];
let env: Record<string, string>;
let helloOut: string;
let helloBuild: Awaited<ReturnType<typeof kfarm>>;

const readReport = async (out: string) => JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
const row = (report: BuildReport, kernel: string): KernelReport => {
  const found = report.kernels.find((k) => k.kernel === kernel);
  if (!found) throw new Error(`no row for ${kernel}`);
  return found;
};

beforeAll(async () => {
  env = await isolatedEnv('verify-load');
  helloOut = await tempDir('verify-hello');
  helloBuild = await kfarm(['build', example('hello'), '-k', amd64.join(','), '-o', helloOut, '--verify', 'load'], env, 900_000);
}, 900_000);

describe('kfarm build --verify load', () => {
  it('examples/hello loads on every amd64 kernel of the default debian-12 set, its init message in the captured console', async () => {
    expect(helloBuild.exitCode, helloBuild.stderr).toBe(0);
    const report = await readReport(helloOut);
    for (const kernel of amd64) {
      const load = row(report, kernel).load;
      expect(load, kernel).toMatchObject({ verdict: 'loaded' });
      expect(['kvm', 'tcg']).toContain(load?.accel);
      expect(load?.bootMs).toBeGreaterThan(0);
      expect(load?.loadMs).toBeGreaterThanOrEqual(0);
      expect(load?.log).toBe(`logs/load/hello/${kernel}.log`);
      const console = await readFile(path.join(helloOut, load?.log ?? ''), 'utf8');
      expect(console).toContain(`Linux version ${kernel}`);
      expect(console).toMatch(/hello: hello from kfarm/);
    }
    expect(helloBuild.stdout).toMatch(/LOAD/);
    expect(helloBuild.stdout).toMatch(new RegExp(`${k61.replace(/[.+]/g, '\\$&')}\\s+built\\s+\\S+ \\S+\\s+loaded \\((kvm|tcg)\\)`));
  });

  it('a module that needs a symbol no kernel exports builds, then fails to load with Unknown symbol (exit 1)', async () => {
    const out = await tempDir('verify-missing');
    const run = await kfarm(['build', fixture('needs-missing-symbol'), '-k', k61, '-o', out, '--verify', 'load', '--accel', 'tcg'], env, 600_000);
    expect(run.exitCode, run.stderr).toBe(1);
    const r = row(await readReport(out), k61);
    expect(r.verdict).toBe('built');
    expect(r.load).toMatchObject({ verdict: 'load-failed', reason: 'unknown-symbol', accel: 'tcg' });
    expect(r.load?.firstError).toMatch(/^kfarm_missing: Unknown symbol kfarm_no_such_symbol/);
    expect(run.stdout).toContain('load-failed: unknown-symbol');
  });

  it('a module whose init never returns is ended by the hard boot timeout: load-failed, timeout', async () => {
    const out = await tempDir('verify-hang');
    const started = Date.now();
    const run = await kfarm(['build', fixture('hangs-on-load'), '-k', k61, '-o', out, '--verify', 'load', '--accel', 'tcg', '--boot-timeout', '45'], env, 600_000);
    expect(run.exitCode, run.stderr).toBe(1);
    const r = row(await readReport(out), k61);
    expect(r.load).toMatchObject({ verdict: 'load-failed', reason: 'timeout' });
    expect(await readFile(path.join(out, r.load?.log ?? ''), 'utf8')).toContain('kfarm_hang: sleeping');
    expect(Date.now() - started).toBeLessThan(240_000);
  });

  it('a kernel the module was not built for is not-verified, saying why', async () => {
    const out = await tempDir('verify-excluded');
    const run = await kfarm(['build', fixture('exclusive-61'), '-k', `${k61},${k612}`, '-o', out, '--verify', 'load', '--accel', 'tcg'], env, 600_000);
    expect(run.exitCode, run.stderr).toBe(0);
    const report = await readReport(out);
    expect(row(report, k61).load?.verdict).toBe('loaded');
    expect(row(report, k612).load).toMatchObject({ verdict: 'not-verified', reason: 'excluded' });
  });
});

describe('kfarm verify <out-dir>', () => {
  it('with module.sig_enforce=1 the unsigned module is refused: unsigned-rejected (exit 1)', async () => {
    const run = await kfarm(['verify', helloOut, '--kernels', k61, '--accel', 'tcg', '--cmdline', 'module.sig_enforce=1'], env, 600_000);
    expect(run.exitCode, run.stderr).toBe(1);
    const report = await readReport(helloOut);
    expect(row(report, k61).load).toMatchObject({ verdict: 'load-failed', reason: 'unsigned-rejected', firstError: 'Loading of unsigned module is rejected' });
    // the other kernels' rows keep their earlier check
    expect(row(report, k612).load?.verdict).toBe('loaded');
  });

  it('--accel tcg boots every kernel under software emulation and says so', async () => {
    const run = await kfarm(['verify', helloOut, '--accel', 'tcg'], env, 900_000);
    expect(run.exitCode, run.stderr).toBe(0);
    const report = await readReport(helloOut);
    for (const kernel of amd64) expect(row(report, kernel).load, kernel).toMatchObject({ verdict: 'loaded', accel: 'tcg' });
    for (const kernel of amd64) {
      const l = row(report, kernel).load;
      console.log(`tcg ${kernel}: boot ${l?.bootMs} ms, load ${l?.loadMs} ms`);
    }
  });

  it("a report that is not kfarm's is refused before any boot (exit 2)", async () => {
    const run = await kfarm(['verify', await tempDir('verify-empty')], env);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('holds no report.json');
  });
});

describe('arm64 guests under TCG', () => {
  it('hello built for the newest debian-12 6.1 arm64 kernel loads in an emulated aarch64 guest', async () => {
    const available = await kfarm(['kernels', '--available', 'debian-12', '--arch', 'arm64', '--json'], env);
    expect(available.exitCode, available.stderr).toBe(0);
    const pick = (JSON.parse(available.stdout) as AvailableKernel[]).find((k) => k.fetchable && k.flavour === 'arm64' && /^6\.1\.0-\d+-arm64$/.test(k.kernel));
    expect(pick, 'the archive offers a fetchable debian-12 6.1 arm64 kernel').toBeDefined();
    const kernel = pick?.kernel ?? '';
    // cached by content: a no-op where the arm64 test (or setup) synced it already
    const sync = await kfarm(['images', 'sync', 'debian-12', '--arch', 'arm64', '--kernels', kernel], env, 1_800_000);
    expect(sync.exitCode, `${sync.stdout}\n${sync.stderr}`).toBe(0);
    const out = await tempDir('verify-arm64');
    const run = await kfarm(['build', example('hello'), '-k', kernel, '-o', out, '--verify', 'load'], env, 900_000);
    expect(run.exitCode, run.stderr).toBe(0);
    const load = row(await readReport(out), kernel).load;
    expect(load).toMatchObject({ verdict: 'loaded', accel: 'tcg' });
    console.log(`tcg arm64 ${kernel}: boot ${load?.bootMs} ms, load ${load?.loadMs} ms`);
    expect(await readFile(path.join(out, load?.log ?? ''), 'utf8')).toMatch(/hello: hello from kfarm/);
  }, 1_800_000);
});

describe('a module built for one kernel, booted on another', () => {
  it(`hello built for ${k612} is refused by ${k612.replace(/-amd64$/, '-rt-amd64')} for its module version`, async () => {
    const [input] = await readPackInputs(helloOut);
    const built = input?.kernels.find((k) => k.kernel === k612);
    expect(built).toBeDefined();
    const ctx = await verifyContext({ accel: 'tcg', cmdline: '', stateDir: env.KFARM_STATE_DIR ?? '', runtime: new DockerRuntime(), logger: rootLogger, say: () => {} });
    const other = k612.replace(/-amd64$/, '-rt-amd64');
    const { load, console } = await verifyKernel(ctx, {
      kernel: other,
      arch: 'x86_64',
      release: 'debian-12',
      debianArch: 'amd64',
      modules: built?.modules.map((m) => ({ installLocation: m.installLocation, fileName: m.fileName, data: m.data })) ?? [],
    });
    expect(console).toContain(`Linux version ${other}`);
    expect(load).toMatchObject({ verdict: 'load-failed', reason: 'version-magic', firstError: 'hello: disagrees about version of symbol module_layout' });
  }, 600_000);
});
