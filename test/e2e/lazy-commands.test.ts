import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';
import { KFARM_BIN, tempDir } from '../helpers/kfarm-cli.js';

const PROBE = path.join(packageRoot, 'test', 'helpers', 'module-probe.mjs');

/** Runs the compiled CLI and returns its exit status and the modules it loaded, as paths under the package root. */
async function loadedBy(args: string[]): Promise<{ exitCode: number; stderr: string; modules: string[] }> {
  const dir = await tempDir('lazy');
  const out = path.join(dir, 'loaded.txt');
  const r = await execa('node', ['--import', PROBE, KFARM_BIN, ...args], {
    env: { KFARM_PROBE_OUT: out, KFARM_STATE_DIR: path.join(dir, 'state') },
    reject: false,
    cwd: packageRoot,
  });
  const urls = (await readFile(out, 'utf8')).split('\n').filter((u) => u.startsWith('file://'));
  return { exitCode: r.exitCode ?? -1, stderr: String(r.stderr), modules: urls.map((u) => path.relative(packageRoot, new URL(u).pathname)) };
}

/** the packages that make a command slow to start; only the commands that talk to Redis or Docker may load them */
const HEAVY = ['bullmq', 'ioredis', 'dockerode', 'execa', 'tar-stream', 'pino'];
const packagesIn = (modules: string[]) => new Set(modules.flatMap((m) => /^node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(m)?.[1] ?? []));
const actionsIn = (modules: string[]) => modules.filter((m) => m.startsWith('lib/src/cli/actions/')).map((m) => path.basename(m, '.js'));

/**
 * Each command's implementation (src/cli/actions/) is imported only when that command runs:
 * every process registers every command, so one top-level import of a heavy module in
 * src/cli/commands/ or main.ts would slow them all (issue 12: a warm build under 1 s).
 */
describe('commands load their code only when they run', () => {
  it.each([[['--version']], [['--help']], [['build', '--help']], [['images', 'sync', '--help']], [['frobnicate']]])(
    'kfarm %j loads no command implementation and no heavy package',
    async (args) => {
      const { modules } = await loadedBy(args);
      expect(modules).toContain('lib/src/cli/main.js'); // the probe saw the CLI load
      expect(actionsIn(modules)).toEqual([]);
      expect([...packagesIn(modules)].filter((p) => HEAVY.includes(p))).toEqual([]);
    },
  );

  it('kfarm cache ls loads the cache implementation, and neither Redis, BullMQ nor Docker code', async () => {
    const { exitCode, stderr, modules } = await loadedBy(['cache', 'ls']);
    expect(exitCode, stderr).toBe(0);
    expect(actionsIn(modules)).toEqual(['cache']);
    const packages = packagesIn(modules);
    for (const p of ['bullmq', 'ioredis', 'dockerode']) expect(packages.has(p), p).toBe(false);
  });

  it('kfarm build without --verify loads neither the QEMU boot code nor Redis/BullMQ (a source that is not there: exit 2 after the build code loaded)', async () => {
    const { exitCode, stderr, modules } = await loadedBy(['build', '/nonexistent-kfarm-source']);
    expect(exitCode, stderr).toBe(2);
    expect(actionsIn(modules)).toEqual(['build']);
    expect(modules.filter((m) => m.startsWith('lib/src/verify/'))).toEqual([]);
    const packages = packagesIn(modules);
    for (const p of ['bullmq', 'ioredis']) expect(packages.has(p), p).toBe(false);
  });

  it('the probe sees a dynamically imported command and the packages it loads (kfarm kernels with a bad option)', async () => {
    const { exitCode, stderr, modules } = await loadedBy(['kernels', '--json']);
    expect(exitCode, stderr).toBe(2);
    expect(stderr).toContain('releases, --arch, --json, --mirror, --security-mirror and --keyring go with --available');
    expect(actionsIn(modules)).toEqual(['images']);
    const packages = packagesIn(modules);
    for (const p of ['ioredis', 'dockerode']) expect(packages.has(p), p).toBe(true);
  });
});
