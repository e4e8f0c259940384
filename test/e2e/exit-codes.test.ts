import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';

/**
 * The exit statuses the README lists, where no other e2e test covers them. Covered elsewhere:
 * 0 (build-hello.test.ts), 1 (failures.test.ts: fails-on-612), 2 for a missing source, a
 * missing or unusable dkms.conf, a selector that matches nothing and an --out that cannot be
 * written (failures.test.ts), 3 for Docker or Redis unreachable (failures.test.ts), for an
 * engine answering 500 (integration/docker-engine-errors.test.ts) and for a farm with no
 * worker (integration/distributed.test.ts), 130 for SIGINT (failures.test.ts); 2 for a report.json
 * cut short or edited (`kfarm pack`, `kfarm verify`) and an --out below /proc, 3 for a full disk
 * under --out (out-dir.test.ts).
 */
describe('exit 2: bad options, named', () => {
  it.each([
    [['--memory', 'abc'], "option '--memory <MiB>' argument 'abc' is invalid"],
    [['--concurrency', '0'], "argument '0' is invalid"],
    [['--timeout', '-5'], "argument '-5' is invalid"],
    [['--cpus', '1.5'], "argument '1.5' is invalid"],
    [['--no-such-option'], "unknown option '--no-such-option'"],
  ])('kfarm build %j: exit 2 before any build', async (args, said) => {
    const r = await kfarm(['build', example('hello'), '--out', await tempDir('badopt'), ...args], await isolatedEnv('badopt'));
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain(said);
    expect(r.stderr).not.toContain('building ');
  });

  it('an unknown command: exit 2', async () => {
    const r = await kfarm(['frobnicate'], await isolatedEnv('badcmd'));
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
  });

  it('kfarm worker --concurrency x: exit 2', async () => {
    const r = await kfarm(['worker', '--concurrency', 'x'], await isolatedEnv('badworker'));
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain("argument 'x' is invalid");
  });
});

describe('exit 2: bad input', () => {
  // A source's links leading out of it are carried as links and build (source-links.test.ts); what stays
  // refused is a dkms.conf that is such a link: its target would be the build host's file, never the
  // one the target machine's DKMS reads. Also a special file (it is neither read nor recreated).
  it('a source whose dkms.conf is a symlink leading out of it: exit 2, names the link, the host file unread', async () => {
    const base = await tempDir('conf-link');
    const src = path.join(base, 'src');
    await mkdir(src);
    const hostConf = path.join(base, 'host-dkms.conf');
    await writeFile(hostConf, 'PACKAGE_NAME="hostconf"\nPACKAGE_VERSION="1"\nBUILT_MODULE_NAME[0]="hostconf"\nDEST_MODULE_LOCATION[0]="/extra"\n');
    await symlink(hostConf, path.join(src, 'dkms.conf'));
    const r = await kfarm(['build', src, '--out', await tempDir('conf-link-out')], await isolatedEnv('conflink'));
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain(`dkms.conf is a symlink (-> ${hostConf}) that leads out of the source tree`);
    expect(r.stderr).toContain('Put the dkms.conf itself at the top of the source tree');
    expect(r.stderr).not.toContain('hostconf');
    expect(r.stderr).not.toContain('building ');
  });

  it('a source holding a fifo: exit 2, names it (never opened: the build does not hang)', async () => {
    const src = await tempDir('fifo-src');
    await writeFile(path.join(src, 'dkms.conf'), 'PACKAGE_NAME="fifo"\nPACKAGE_VERSION="1"\nBUILT_MODULE_NAME[0]="fifo"\nDEST_MODULE_LOCATION[0]="/extra"\n');
    await execa('mkfifo', [path.join(src, 'pipe')]);
    const r = await kfarm(['build', src, '--out', await tempDir('fifo-out')], await isolatedEnv('fifo'), 60_000);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain('pipe is a fifo: a module source holds only files, directories and symlinks');
  });
});

/**
 * "No images": a real second Docker engine with its own, empty data root and network
 * namespace, started for this test (no stand-in: what kfarm asks it and what it answers are
 * the real API).
 */
describe('exit 3: a Docker engine without kfarm images', () => {
  let dir: string;
  let engine: ResultPromise | undefined;
  let socket: string;

  beforeAll(async () => {
    dir = await tempDir('empty-engine');
    socket = path.join(dir, 'docker.sock');
    // Its own network namespace: with --bridge none dockerd deletes the bridge docker0, which
    // in the host's namespace belongs to the real engine.
    engine = execa(
      'unshare',
      [
        '--net',
        '--',
        'dockerd',
        '--data-root',
        path.join(dir, 'data'),
        '--exec-root',
        path.join(dir, 'exec'),
        '--pidfile',
        path.join(dir, 'dockerd.pid'),
        '--host',
        `unix://${socket}`,
        '--bridge',
        'none',
        '--iptables=false',
        '--ip-masq=false',
      ],
      { reject: false, stdout: 'ignore', stderr: 'ignore' },
    );
    for (let i = 0; i < 120; i++) {
      if ((await execa('docker', ['--host', `unix://${socket}`, 'info'], { reject: false, timeout: 5000 })).exitCode === 0) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error('the empty Docker engine did not start within 30 s');
  }, 60_000);

  afterAll(async () => {
    engine?.kill('SIGTERM');
    await engine;
    await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('kfarm build: exit 3, says there is no build image and how to build one', async () => {
    const r = await kfarm(['build', example('hello'), '--out', await tempDir('noimages')], { ...(await isolatedEnv('noimages')), DOCKER_HOST: `unix://${socket}` });
    expect(r.exitCode, r.stderr).toBe(3);
    expect(r.stderr).toContain('kfarm: error: there is no kfarm build image on this Docker engine');
    expect(r.stderr).toContain('kfarm images sync debian-12');
  });
});
