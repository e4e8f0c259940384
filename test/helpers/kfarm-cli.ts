import path from 'node:path';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import { execa, type ResultPromise } from 'execa';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { listKfarmImages } from '../../src/images/catalog.js';
import { defaultDebian12Kernels } from '../../src/matrix/debian-kernels.js';
import { compareKernels } from '../../src/matrix/kernel-target.js';
import { packageRoot } from '../../src/paths.js';

/** Runs the real CLI entry point (compiled by `npm run build`, which setup.sh runs). */
export const KFARM_BIN = path.join(packageRoot, 'bin', 'kfarm.js');

export interface CliRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function kfarm(args: string[], env: Record<string, string> = {}, timeoutMs = 600_000): Promise<CliRun> {
  const result = await execa('node', [KFARM_BIN, ...args], { env, reject: false, timeout: timeoutMs, cwd: packageRoot });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

export function kfarmProcess(args: string[], env: Record<string, string> = {}): ResultPromise {
  return execa('node', [KFARM_BIN, ...args], { env, reject: false, cwd: packageRoot, buffer: true, all: true });
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `kfarm-test-${prefix}-`));
}

/** Each test file gets its own state dir and queue: no test sees another's cache. */
export async function isolatedEnv(prefix: string): Promise<Record<string, string>> {
  return { KFARM_STATE_DIR: await tempDir(`${prefix}-state`), KFARM_QUEUE: `test-${prefix}-${process.pid}`, KFARM_KERNELS: await defaultKernels() };
}

let defaultSet: Promise<string> | undefined;

/**
 * The kernels a `kfarm build` without --kernels builds in tests: setup's default debian-12 set
 * (two newest 6.1 ABIs, newest 6.12, generic amd64) among the kernels held, whatever other
 * tests synced (arm64, cloud, rt, every ABI of a release), which have their own tests.
 */
export function defaultKernels(): Promise<string> {
  defaultSet ??= listKfarmImages(new DockerRuntime()).then((images) => {
    const held = images.filter((i) => i.name === 'debian-12' && i.arch === 'x86_64').flatMap((i) => i.kernels);
    return held.length > 0 ? defaultDebian12Kernels(held).join(',') : 'all';
  });
  return defaultSet;
}

export const fixture = (name: string) => path.join(packageRoot, 'test', 'fixtures', 'modules', name);
export const example = (name: string) => path.join(packageRoot, 'examples', name);

/** Setup's debian-12 set by series: the newest 6.1, the one before it, and the 6.12 (top-level await in a test file is fine). */
export async function debian12Kernels(): Promise<{ k61: string; k61b: string; k612: string }> {
  const set = (await defaultKernels()).split(',');
  const sixOne = set.filter((k) => k.startsWith('6.1.')).sort(compareKernels);
  const pick = (k: string | undefined, what: string) => {
    if (!k) throw new Error(`setup's debian-12 set holds no ${what}: run scripts/setup.sh`);
    return k;
  };
  return {
    k61: pick(sixOne.at(-1), '6.1 kernel'),
    k61b: pick(sixOne.at(-2), 'second 6.1 kernel'),
    k612: pick(
      set.find((k) => k.startsWith('6.12.')),
      '6.12 kernel',
    ),
  };
}
