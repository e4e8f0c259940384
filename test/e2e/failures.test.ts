import { access, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { closeConnection, connectChecked } from '../../src/queue/redis-connection.js';
import { BuildQueue } from '../../src/queue/build-queue.js';
import { startPrivateRedis } from '../../src/queue/private-redis.js';
import { pino } from 'pino';
import type { BuildReport } from '../../src/report/report.js';
import { defaultKernels, example, fixture, isolatedEnv, kfarm, kfarmProcess, tempDir } from '../helpers/kfarm-cli.js';

const runtime = new DockerRuntime();
const readReport = async (out: string) => JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
let kernels: string[];
/** the report's rows, one per kernel asked for and in no other number */
const rowsOf = (report: BuildReport, asked: string[]) => {
  expect(report.kernels.map((k) => k.kernel).sort()).toEqual([...asked].sort());
  return report.kernels;
};
/**
 * A build with the pid its containers are labelled with (kfarm.pid): "no container left" is
 * asked of this build's, as other builds may be running on this machine.
 */
async function kfarmBuild(args: string[], env: Record<string, string>) {
  const proc = kfarmProcess(args, env);
  const ended = await proc;
  return {
    exitCode: ended.exitCode ?? -1,
    stdout: String(ended.stdout),
    stderr: String(ended.stderr),
    containersLeft: () => runtime.listContainers({ 'kfarm.pid': String(proc.pid) }),
  };
}
/** the failure junit.xml gives one kernel's testcase: its message attribute */
const junitMessage = async (out: string, kernel: string) => {
  const xml = await readFile(path.join(out, 'junit.xml'), 'utf8');
  const testcase = xml.split('<testcase ').find((t) => t.includes(` name="${kernel}"`));
  return /<failure message="([^"]*)"/.exec(testcase ?? '')?.[1];
};

/** Jobs still queued in a finished build's private Redis (started again to look). */
async function jobsLeftQueued(env: Record<string, string>): Promise<number> {
  const redis = await startPrivateRedis(env.KFARM_STATE_DIR ?? '', pino({ level: 'silent' }));
  const queue = new BuildQueue(redis.target, env.KFARM_QUEUE ?? '');
  try {
    const counts = await queue.queue.getJobCounts('waiting', 'delayed', 'prioritized', 'active');
    return Object.values(counts).reduce((a, b) => a + b, 0);
  } finally {
    await queue.close();
    await redis.stop();
  }
}

beforeAll(async () => {
  // what a build without --kernels builds here: setup's default set (KFARM_KERNELS, see isolatedEnv)
  kernels = (await defaultKernels()).split(',');
});

describe('kernels that fail or are excluded', () => {
  it('a compile error on 6.12 fails only 6.12; the others still build; exit 1', async () => {
    const out = await tempDir('fails612');
    const result = await kfarm(['build', fixture('fails-on-612'), '--out', out], await isolatedEnv('fails612'));
    expect(result.exitCode, result.stderr).toBe(1);
    const report = await readReport(out);
    for (const k of rowsOf(report, kernels)) {
      if (k.kernel.startsWith('6.12.')) {
        expect(k.verdict).toBe('failed');
        expect(k.reason).toBe('make-failed');
        expect(k.firstError).toBe('/var/lib/dkms/fails612/0.1/build/fails612.c:5:2: error: #error "fails612 does not support kernel 6.12"');
        expect(k.tarball).toBeUndefined();
        expect(await readFile(path.join(out, k.log), 'utf8')).toContain('#error');
      } else {
        expect(k.verdict).toBe('built');
      }
    }
    expect(report.summary.failed).toBe(1);
    expect(report.summary.built).toBe(kernels.length - 1);
    expect(result.stdout).toContain('make-failed: ');
  });

  it('reports each kernel as it finishes, not all at the end', async () => {
    const out = await tempDir('slow612');
    const proc = kfarmProcess(['build', fixture('slow-on-612'), '--out', out, '--concurrency', String(kernels.length)], await isolatedEnv('slow612'));
    const seen: Array<{ line: string; at: number }> = [];
    proc.stderr?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (/^\[\d+\/\d+\] .*: built/.test(line)) seen.push({ line, at: Date.now() });
    });
    const ended = await proc;
    expect(ended.exitCode, String(ended.all)).toBe(0);
    const first61 = seen.find((s) => s.line.includes(' 6.1.'));
    const last612 = seen.find((s) => s.line.includes(' 6.12.'));
    expect(first61 && last612).toBeTruthy();
    // 6.12 sleeps 8 s more: a 6.1 kernel's "built" line must come out seconds before it.
    expect((last612?.at ?? 0) - (first61?.at ?? 0)).toBeGreaterThan(4000);
  });

  it('two builds at once on one state dir share its private Redis; the one that started it does not stop it under the other', async () => {
    const env = await isolatedEnv('twobuilds');
    const socket = path.join(env.KFARM_STATE_DIR ?? '', 'redis', 'redis.sock');
    const [outA, outB] = [await tempDir('two-a'), await tempDir('two-b')];
    // A: quick, starts the server. B: joins it and is still building (6.12 sleeps) when A is done.
    const quick = kfarmProcess(['build', example('hello'), '--out', outA, '--kernels', kernels[0] ?? 'none'], env);
    for (
      let i = 0;
      i < 200 &&
      !(await access(socket).then(
        () => true,
        () => false,
      ));
      i++
    )
      await new Promise((r) => setTimeout(r, 50));
    const slow = kfarmProcess(['build', fixture('slow-on-612'), '--out', outB, '--concurrency', String(kernels.length)], env);
    const endedA = await quick;
    expect(endedA.exitCode, String(endedA.all)).toBe(0);
    const endedB = await slow;
    expect(endedB.exitCode, String(endedB.all)).toBe(0);
    expect((await readReport(outB)).summary.built).toBe(kernels.length);
    // The last one out stopped it: no socket (and so no server) is left in the state dir.
    await expect(access(socket)).rejects.toThrow();
  });

  it('the private Redis killed mid-build is started again; results already in hand are kept; the build finishes', async () => {
    const env = await isolatedEnv('redis-killed');
    const out = await tempDir('redis-killed');
    const proc = kfarmProcess(['build', fixture('slow-on-612'), '--out', out, '--concurrency', String(kernels.length)], env);
    let killed: Promise<number> | undefined;
    proc.stderr?.on('data', (chunk: Buffer) => {
      // Once a 6.1 kernel is built (its module is in Redis) and 6.12 still compiles: SIGKILL the server.
      if (!killed && /^\[\d+\/\d+\] 6\.1\..*: built/m.test(chunk.toString('utf8'))) {
        killed = (async () => {
          const redis = await connectChecked({ socket: path.join(env.KFARM_STATE_DIR ?? '', 'redis', 'redis.sock') });
          const pid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);
          closeConnection(redis);
          process.kill(pid, 'SIGKILL');
          return pid;
        })();
      }
    });
    const ended = await proc;
    expect(await killed).toBeGreaterThan(0);
    expect(String(ended.all)).toContain('the private Redis went away; starting it again');
    expect(ended.exitCode, String(ended.all)).toBe(0);
    const report = await readReport(out);
    expect(report.summary.built).toBe(kernels.length);
    for (const k of rowsOf(report, kernels)) expect(k.tarball).toBeTruthy();
  });

  it("a Makefile's $(error ...) is the first error in report.json, junit.xml and the table, not make's Error 2", async () => {
    const out = await tempDir('makeerror');
    const kernel = kernels[0] ?? 'none';
    const result = await kfarm(['build', fixture('make-error'), '--out', out, '--kernels', kernel], await isolatedEnv('makeerror'));
    expect(result.exitCode, result.stderr).toBe(1);
    const [k] = rowsOf(await readReport(out), [kernel]);
    const cause = '/var/lib/dkms/makeerror/0.1/build/Makefile:3: *** deliberate failure.  Stop.';
    expect(k).toMatchObject({ verdict: 'failed', reason: 'make-failed', firstError: cause });
    expect(await junitMessage(out, kernel)).toBe(`make-failed: ${cause}`);
    expect(result.stdout).toContain(`make-failed: ${cause}`);
  });

  it("a module make did not build: the driver's message is the first error, not make leaving its directory", async () => {
    const out = await tempDir('missingmod');
    const kernel = kernels[0] ?? 'none';
    const result = await kfarm(['build', fixture('missing-module'), '--out', out, '--kernels', kernel], await isolatedEnv('missingmod'));
    expect(result.exitCode, result.stderr).toBe(1);
    const [k] = rowsOf(await readReport(out), [kernel]);
    expect(k).toMatchObject({ verdict: 'failed', reason: 'missing-module' });
    expect(k?.firstError).toMatch(/^Build of missing\.ko failed for: \S+ \(x86_64\): make succeeded but the module is not there/);
    expect(k?.firstError).toBe(k?.message);
    expect(await junitMessage(out, kernel)).toBe(`missing-module: ${k?.firstError ?? 'none'}`);
    expect(result.stdout).toContain(`missing-module: ${k?.firstError ?? 'none'}`);
  });

  it('BUILD_EXCLUSIVE_KERNEL excludes non-matching kernels, and that is a success', async () => {
    const out = await tempDir('excl');
    const result = await kfarm(['build', fixture('exclusive-61'), '--out', out], await isolatedEnv('excl'));
    expect(result.exitCode, result.stderr).toBe(0);
    const report = await readReport(out);
    for (const k of rowsOf(report, kernels)) {
      expect(k.verdict).toBe(k.kernel.startsWith('6.1.') ? 'built' : 'excluded');
      if (k.verdict === 'excluded') expect(k.message).toContain('BUILD_EXCLUSIVE_KERNEL');
    }
  });

  it('a dkms.conf whose version depends on the kernel: every kernel builds it as the version `dkms add` registered, with a warning', async () => {
    const out = await tempDir('verbykernel');
    const result = await kfarm(['build', fixture('version-by-kernel'), '--out', out], await isolatedEnv('verbykernel'));
    expect(result.exitCode, result.stderr).toBe(0);
    const report = await readReport(out);
    expect(report.version).toBe('1.0');
    expect(rowsOf(report, kernels).map((k) => k.verdict)).toEqual(kernels.map(() => 'built'));
    // dkms add reads dkms.conf for the running kernel (the farm host's, never a 6.12 here)
    expect(`${result.stdout}${result.stderr}${report.warnings.join('\n')}`).toMatch(/dkms\.conf says verbykernel\/2\.0 for 6\.12\.\S+ but verbykernel\/1\.0/);
  });

  it('kfarm build interrupted with SIGINT: exit 130, its containers removed, nothing left queued', async () => {
    const env = await isolatedEnv('sigint');
    const proc = kfarmProcess(['build', fixture('hangs'), '--out', await tempDir('sigint'), '--concurrency', '1'], env);
    let running = false;
    for (let i = 0; i < 240 && !running; i++) {
      running = (await runtime.listContainers({ 'kfarm.pid': String(proc.pid) })).some((c) => c.running);
      if (!running) await new Promise((r) => setTimeout(r, 250));
    }
    expect(running).toBe(true);
    proc.kill('SIGINT');
    const ended = await proc;
    expect(ended.exitCode, String(ended.all)).toBe(130);
    expect(await runtime.listContainers({ 'kfarm.pid': String(proc.pid) })).toEqual([]);
    expect(await jobsLeftQueued(env)).toBe(0);
  });

  it('a Makefile that hangs is killed at the timeout: verdict failed, reason timeout, no container left', async () => {
    const out = await tempDir('hang');
    const kernel = kernels[0] ?? 'none';
    const started = Date.now();
    const result = await kfarmBuild(['build', fixture('hangs'), '--out', out, '--kernels', kernel, '--timeout', '8'], await isolatedEnv('hang'));
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(result.exitCode, result.stderr).toBe(1);
    const report = await readReport(out);
    const [k] = rowsOf(report, [kernel]);
    expect(k).toMatchObject({ verdict: 'failed', reason: 'timeout', firstError: 'timeout after 8 s' });
    expect(await readFile(path.join(out, k?.log ?? ''), 'utf8')).toContain('killed: the build ran longer than the 8 s timeout');
    // the log shows dkms.conf was read (the build dir hangs/0.0.1): the report says who it is
    expect([report.module, report.version]).toEqual(['hangs', '0.0.1']);
    expect(report.warnings).toEqual([]);
    expect(await result.containersLeft()).toEqual([]);
  });

  it('a build with its own MAKE and CLEAN cut short by the timeout: the report still names the module', async () => {
    const out = await tempDir('hangownmake');
    const kernel = kernels[0] ?? 'none';
    const result = await kfarmBuild(['build', fixture('hangs-own-make'), '--out', out, '--kernels', kernel, '--timeout', '8'], await isolatedEnv('hangownmake'));
    expect(result.exitCode, result.stderr).toBe(1);
    const report = await readReport(out);
    expect(rowsOf(report, [kernel])[0]).toMatchObject({ verdict: 'failed', reason: 'timeout' });
    // no line of its log holds the build dir's path: the driver's own line names it
    expect([report.module, report.version]).toEqual(['hangsownmake', '0.0.2']);
    expect(report.warnings).toEqual([]);
    expect(await result.containersLeft()).toEqual([]);
  });

  it('a build that forks without end is held by the pids limit and ended by the timeout', async () => {
    const out = await tempDir('forkbomb');
    const kernel = kernels[0] ?? 'none';
    const started = Date.now();
    const result = await kfarmBuild(['build', fixture('forkbomb'), '--out', out, '--kernels', kernel, '--timeout', '10'], await isolatedEnv('forkbomb'));
    expect(result.exitCode, result.stderr).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(10_000);
    const report = await readReport(out);
    const [k] = rowsOf(report, [kernel]);
    // still forking (held, not crashed) when the timeout came: a make-failed would be the bomb dying first
    expect(k).toMatchObject({ verdict: 'failed', reason: 'timeout', firstError: 'timeout after 10 s' });
    const log = await readFile(path.join(out, k?.log ?? ''), 'utf8');
    expect(log).toContain('./bomb.sh: fork: retry: Resource temporarily unavailable'); // the pids limit said no
    expect(log).toContain('killed: the build ran longer than the 10 s timeout');
    expect([report.module, report.version]).toEqual(['forkbomb', '0.0.1']);
    expect(await result.containersLeft()).toEqual([]);
  });

  it('a build whose output holds links leading out is refused: failed, unsafe-output, not retried', async () => {
    const out = await tempDir('escapes');
    const result = await kfarm(['build', fixture('escapes-output'), '--out', out, '--kernels', kernels[0] ?? 'none'], await isolatedEnv('escapes'));
    expect(result.exitCode, result.stderr).toBe(1);
    const k = (await readReport(out)).kernels[0];
    expect(k).toMatchObject({ verdict: 'failed', reason: 'unsafe-output', attempt: 1 });
    expect(k?.firstError).toContain('symlink entries are not allowed');
    expect(k?.modules).toEqual([]);
    expect(await readFile(path.join(out, k?.log ?? ''), 'utf8')).toContain("kfarm refused the build's output");
  });

  it('a build that runs out of memory is killed by the limit: failed, reason killed, says to raise --memory', async () => {
    const out = await tempDir('eatsmem');
    const result = await kfarmBuild(
      ['build', fixture('eats-memory'), '--out', out, '--kernels', kernels[0] ?? 'none', '--memory', '256', '--timeout', '120'],
      await isolatedEnv('eatsmem'),
    );
    expect(result.exitCode, result.stderr).toBe(1);
    const [k] = rowsOf(await readReport(out), [kernels[0] ?? 'none']);
    expect(k).toMatchObject({ verdict: 'failed', reason: 'killed', attempt: 1 });
    expect(k?.message).toContain('256 MiB memory limit');
    // the cause is the limit, not bash's line about the job in kfarm's driver
    expect(k?.firstError).toBe(k?.message);
    expect(result.stdout).toContain(`killed: ${k?.message ?? 'none'}`);
    expect(await result.containersLeft()).toEqual([]);
  });

  it('a build that fills the disk ends with disk-full, in its build tree and in /tmp, naming the mount and what to raise', async () => {
    const out = await tempDir('fillsdisk');
    const on61 = kernels.find((k) => k.startsWith('6.1.')) ?? 'none';
    const on612 = kernels.find((k) => k.startsWith('6.12.')) ?? 'none';
    const started = Date.now();
    const result = await kfarmBuild(
      ['build', fixture('fills-disk'), '--out', out, '--kernels', `${on61},${on612}`, '--memory', '512', '--disk', '128', '--timeout', '120'],
      await isolatedEnv('fillsdisk'),
    );
    expect(result.exitCode, result.stderr).toBe(1);
    expect(Date.now() - started).toBeLessThan(100_000); // stopped by the limits, not the timeout
    const byKernel = new Map((await readReport(out)).kernels.map((k) => [k.kernel, k]));
    // 6.1: the build tree (a tmpfs of --disk = 128 MiB) is full; the driver says so
    expect(byKernel.get(on61)).toMatchObject({ verdict: 'failed', reason: 'disk-full', attempt: 1 });
    expect(byKernel.get(on61)?.message).toContain('/var/lib/dkms (a 128 MiB tmpfs) ran out of space');
    expect(byKernel.get(on61)?.message).toContain('raise --disk');
    expect(byKernel.get(on61)?.firstError).toContain('No space left on device');
    // 6.12: writes to /tmp, a quarter of --disk
    expect(byKernel.get(on612)).toMatchObject({ verdict: 'failed', reason: 'disk-full', attempt: 1 });
    expect(byKernel.get(on612)?.message).toContain('/tmp (a 32 MiB tmpfs) ran out of space');
    expect(await result.containersLeft()).toEqual([]);
  });
});

describe('bad input gets a clear error and a documented exit status', () => {
  it('a missing source directory: exit 2', async () => {
    const r = await kfarm(['build', '/nonexistent/module'], await isolatedEnv('nosrc'));
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('module source directory /nonexistent/module does not exist');
  });

  it('a source without dkms.conf: exit 2, says what to add', async () => {
    const r = await kfarm(['build', path.join(example('hello'), '..'), '--out', await tempDir('noconf')], await isolatedEnv('noconf'));
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('has no dkms.conf');
    expect(r.stderr).toContain('PACKAGE_NAME');
  });

  it('dkms.conf without PACKAGE_NAME: exit 2 without building every kernel, names the directive, leaves nothing queued', async () => {
    const env = await isolatedEnv('noname');
    // One at a time: when the first kernel says dkms.conf is unusable the last ones still wait.
    const r = await kfarm(['build', fixture('no-name'), '--out', await tempDir('noname'), '--concurrency', '1'], env);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain("No 'PACKAGE_NAME' directive specified");
    expect((r.stderr.match(/: failed/g) ?? []).length).toBeLessThan(kernels.length);
    expect(await jobsLeftQueued(env)).toBe(0);
  });

  it('a dkms.conf with a bash syntax error builds what DKMS would build, and says so', async () => {
    // Real dkms 3.0.10 sources the file up to the error and goes on: only module [0] is declared.
    const out = await tempDir('syntaxerr');
    const r = await kfarm(['build', fixture('syntax-error'), '--out', out, '--kernels', kernels[0] ?? 'none'], await isolatedEnv('syntaxerr'));
    expect(r.exitCode, r.stderr).toBe(0);
    const report = await readReport(out);
    expect(report.warnings).toEqual([expect.stringContaining('dkms.conf: line 7: syntax error')]);
    expect(report.kernels[0]?.modules.map((m) => m.name)).toEqual(['syntaxerr']);
    expect(r.stderr).toContain('warning: dkms.conf has a bash syntax error');
    expect(r.stdout).toContain('warning: dkms.conf has a bash syntax error');
  });

  it('an --out that is not a writable directory: exit 2 before any build', async () => {
    const file = path.join(await tempDir('outfile'), 'a-file');
    await writeFile(file, 'not a directory');
    const r = await kfarm(['build', example('hello'), '--out', file], await isolatedEnv('outfile'));
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain(`--out ${file}: cannot write there`);
    expect(r.stderr).not.toContain(': built');
  });

  it('a kernel selector that matches nothing lists what exists: exit 2', async () => {
    const r = await kfarm(['build', example('hello'), '--kernels', '9.9.*'], await isolatedEnv('sel'));
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('no kernel matches "9.9.*"');
    expect(r.stderr).toContain(kernels[0] ?? 'none');
  });

  it('Docker not reachable: exit 3, says how to start it', async () => {
    const r = await kfarm(['build', example('hello')], { ...(await isolatedEnv('nodocker')), DOCKER_HOST: 'unix:///tmp/no-docker-here.sock' });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain('cannot reach the Docker engine');
    expect(r.stderr).toContain('dockerd');
  });

  it('Redis not reachable at REDIS_URL: exit 3', async () => {
    const r = await kfarm(['build', example('hello')], { ...(await isolatedEnv('noredis')), REDIS_URL: 'redis://127.0.0.1:1' });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain('cannot reach Redis');
  });
});
