import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import type { BuildReport } from '../../src/report/report.js';
import { packageRoot } from '../../src/paths.js';
import { debian12Kernels, example, fixture, isolatedEnv, KFARM_BIN, kfarm, tempDir } from '../helpers/kfarm-cli.js';
import { startServe, type ServeProcess } from '../helpers/serve-process.js';

/**
 * kfarm serve as it is deployed (docs/serve.md): the systemd unit of examples/systemd run as
 * systemd would run it, HTTPS from kfarm itself with a private CA, and nginx in front with the
 * server block of docs/serve.md. The CI client is `kfarm build --farm` with no Docker engine.
 */
const { k61, k612 } = await debian12Kernels();
const UNIT = path.join(packageRoot, 'examples', 'systemd', 'kfarm-serve.service');

/** a port nothing listens on now (the unit's 8470 may be this machine's own farm) */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** `Key=value` lines of one section of a unit file (no continuation lines in ours) */
function unitValues(text: string, section: string, key: string): string[] {
  let current = '';
  const values: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) current = line;
    else if (current === `[${section}]` && line.startsWith(`${key}=`)) values.push(line.slice(key.length + 1));
  }
  return values;
}

/** a CA and a server certificate for 127.0.0.1 signed by it, made by openssl */
async function testCa(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const f = (n: string) => path.join(dir, n);
  const ssl = (args: string[]) => execa('openssl', args, { cwd: dir });
  await ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=kfarm test CA']);
  await ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1']);
  await writeFile(f('server.ext'), 'basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await ssl([
    'x509',
    '-req',
    '-in',
    f('server.csr'),
    '-CA',
    f('ca.pem'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-out',
    f('server.pem'),
    '-days',
    '2',
    '-extfile',
    f('server.ext'),
  ]);
  return { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') };
}

/** A CI runner: Node.js and a token, no Docker engine, no Redis, its own empty state dir. */
async function farmBuild(url: string, token: string, extra: Record<string, string> = {}) {
  const out = await tempDir('deploy-out');
  const env = {
    PATH: process.env.PATH ?? '',
    KFARM_STATE_DIR: await tempDir('deploy-client'),
    KFARM_FARM_TOKEN: token,
    DOCKER_HOST: 'unix:///nonexistent/docker.sock',
    ...extra,
  };
  const run = await execa('node', [KFARM_BIN, 'build', example('hello'), '--farm', url, '--kernels', k61, '--out', out], {
    env,
    extendEnv: false,
    reject: false,
    cwd: packageRoot,
  });
  return { exitCode: run.exitCode, stderr: String(run.stderr), stdout: String(run.stdout), out };
}

async function builtOnly(out: string): Promise<void> {
  const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
  expect(report.kernels.map((k) => [k.kernel, k.verdict])).toEqual([[k61, 'built']]);
}

/** `kfarm tokens create` as the docs say, on the service's state dir */
async function createToken(env: Record<string, string>, scope: string): Promise<string> {
  const made = await kfarm(['tokens', 'create', `deploy-${scope}`, '--scope', scope], env);
  expect(made.exitCode, made.stderr).toBe(0);
  return made.stdout.trim();
}

let tls: { ca: string; cert: string; key: string };

beforeAll(async () => {
  tls = await testCa(await tempDir('deploy-ca'));
}, 60_000);

describe('examples/systemd/kfarm-serve.service', () => {
  it('passes systemd-analyze verify with nothing to say (which does flag a misspelt key)', async () => {
    const ok = await execa('systemd-analyze', ['verify', UNIT], { reject: false });
    expect(ok.stderr).toBe('');
    expect(ok.exitCode).toBe(0);
    const dir = await tempDir('unit-typo');
    const typo = path.join(dir, 'kfarm-serve.service');
    await writeFile(typo, (await readFile(UNIT, 'utf8')).replace('ProtectSystem=strict', 'ProtectSystm=strict'));
    expect((await execa('systemd-analyze', ['verify', typo], { reject: false })).stderr).toMatch(/Unknown key 'ProtectSystm'/);
  }, 60_000);

  it('runs as a docker-group user with its state in its StateDirectory, restarted on failure', async () => {
    const text = await readFile(UNIT, 'utf8');
    expect(unitValues(text, 'Service', 'User')).toEqual(['kfarm']);
    expect(unitValues(text, 'Service', 'SupplementaryGroups')).toEqual(['docker']);
    expect(unitValues(text, 'Service', 'Restart')).toEqual(['on-failure']);
    const stateDirs = unitValues(text, 'Service', 'StateDirectory').flatMap((v) => v.split(/\s+/));
    const env = Object.fromEntries(unitValues(text, 'Service', 'Environment').map((v) => v.split(/=(.*)/s).slice(0, 2))) as Record<string, string>;
    expect(env.KFARM_STATE_DIR).toBe(`/var/lib/${stateDirs[0]}`);
    // the temp dir must be a host path the Docker engine sees (PrivateTmp hides /tmp from it)
    expect(stateDirs.map((d) => `/var/lib/${d}`)).toContain(env.TMPDIR);
  });

  it('its ExecStart, run with its Environment, listens on 127.0.0.1, answers /api/v1/health and stops on SIGTERM', async () => {
    const text = await readFile(UNIT, 'utf8');
    const [execStart] = unitValues(text, 'Service', 'ExecStart');
    const argv = (execStart ?? '').split(/\s+/);
    expect(argv.slice(0, 2)).toEqual(['/usr/bin/node', '/opt/kfarm/bin/kfarm.js']);
    const state = await tempDir('unit-state');
    await mkdir(path.join(state, 'tmp'));
    const port = await freePort();
    // what systemd would do: this checkout for /opt/kfarm, a temp dir for /var/lib/kfarm, a free port for 8470
    const swap = (s: string) => s.replace('/opt/kfarm/bin/kfarm.js', KFARM_BIN).replace('/var/lib/kfarm', state).replace(':8470', `:${port}`);
    const env = Object.fromEntries(unitValues(text, 'Service', 'Environment').map((v) => v.split(/=(.*)/s).slice(0, 2).map(swap)));
    const [file, ...args] = argv.map(swap);
    expect(args).toContain(`127.0.0.1:${port}`);
    const proc: ResultPromise = execa(file ?? 'node', args, { env: { PATH: process.env.PATH ?? '', ...env }, extendEnv: false, reject: false, buffer: false, cwd: '/' });
    let said = '';
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "listening on" within 60 s:\n${said}`)), 60_000);
        proc.stderr?.on('data', (chunk: Buffer) => {
          said += chunk.toString('utf8');
          const m = /listening on (\S+?)[;\s]/.exec(said);
          if (m?.[1]) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        });
        void proc.then((r) => reject(new Error(`exited (${String(r.exitCode)}) before listening:\n${said}`)));
      });
      expect(url).toBe(`http://127.0.0.1:${port}`);
      const health = await fetch(`${url}/api/v1/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ ok: true });
      // its database went where KFARM_STATE_DIR says
      await expect(readFile(path.join(state, 'service', 'farm.db'))).resolves.toBeInstanceOf(Buffer);
    } finally {
      proc.kill('SIGTERM');
    }
    expect((await proc).exitCode, said).toBe(0);
  }, 120_000);
});

describe('kfarm serve --tls-cert --tls-key', () => {
  let serve: ServeProcess;
  let token: string;

  beforeAll(async () => {
    const env = await isolatedEnv('deploy-tls');
    token = await createToken(env, 'submit');
    serve = await startServe(env, ['--tls-cert', tls.cert, '--tls-key', tls.key]);
  }, 120_000);

  afterAll(async () => {
    await serve?.stop();
  });

  it('serves HTTPS: kfarm build --farm with the private CA in NODE_EXTRA_CA_CERTS builds', async () => {
    expect(serve.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const run = await farmBuild(serve.url, token, { NODE_EXTRA_CA_CERTS: tls.ca });
    expect(run.exitCode, run.stderr).toBe(0);
    await builtOnly(run.out);
  }, 600_000);

  it('without the CA the build stops at once, exit 3, saying the TLS certificate is not trusted and what to set', async () => {
    const run = await farmBuild(serve.url, token);
    expect(run.exitCode, run.stderr).toBe(3);
    expect(run.stderr).toMatch(/the farm at https:\/\/127\.0\.0\.1:\d+ cannot be reached: its TLS certificate is not trusted by this machine \(\w+/);
    expect(run.stderr).toMatch(/NODE_EXTRA_CA_CERTS=/);
  }, 120_000);
});

describe('kfarm serve behind nginx (the server block of docs/serve.md)', () => {
  let serve: ServeProcess;
  let nginx: ResultPromise;
  let url: string;
  let token: string;
  let nginxDir: string;

  beforeAll(async () => {
    const env = await isolatedEnv('deploy-nginx');
    token = await createToken(env, 'submit');
    serve = await startServe(env);
    const docs = await readFile(path.join(packageRoot, 'docs', 'serve.md'), 'utf8');
    const block = /```nginx\n([\s\S]*?)```/.exec(docs)?.[1];
    expect(block, 'docs/serve.md has an nginx block').toBeDefined();
    const port = await freePort();
    nginxDir = await tempDir('nginx');
    const serverBlock = (block ?? '')
      .replace('listen 443 ssl;', `listen 127.0.0.1:${port} ssl;`)
      .replace('/etc/ssl/kfarm/fullchain.pem', tls.cert)
      .replace('/etc/ssl/kfarm/privkey.pem', tls.key)
      .replace('http://127.0.0.1:8470', serve.url);
    expect(serverBlock).toContain(`proxy_pass ${serve.url};`);
    const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${nginxDir}/${t};`).join('\n');
    // a whole nginx.conf of its own: no /etc/nginx, no port 443, its logs in the test's dir
    await writeFile(
      path.join(nginxDir, 'nginx.conf'),
      `daemon off;\nworker_processes 1;\npid ${nginxDir}/nginx.pid;\nerror_log ${nginxDir}/error.log info;\nevents { worker_connections 64; }\nhttp {\n  access_log ${nginxDir}/access.log;\n${temp}\n${serverBlock}\n}\n`,
    );
    const check = await execa('nginx', ['-t', '-p', nginxDir, '-c', path.join(nginxDir, 'nginx.conf')], { reject: false });
    expect(check.exitCode, check.stderr).toBe(0);
    nginx = execa('nginx', ['-p', nginxDir, '-c', path.join(nginxDir, 'nginx.conf')], { reject: false });
    url = `https://127.0.0.1:${port}`;
    for (let i = 0; i < 100; i++) {
      const up = await new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(true)).on('error', () => resolve(false));
        s.unref();
        setTimeout(() => s.destroy(), 1000);
      });
      if (up) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 120_000);

  afterAll(async () => {
    nginx?.kill('SIGQUIT');
    await nginx;
    await serve?.stop();
  });

  it('kfarm build --farm through nginx with the private CA builds, as straight to kfarm', async () => {
    const run = await farmBuild(url, token, { NODE_EXTRA_CA_CERTS: tls.ca });
    expect(run.exitCode, `${run.stderr}\nnginx: ${await readFile(path.join(nginxDir, 'error.log'), 'utf8').catch(() => '')}`).toBe(0);
    await builtOnly(run.out);
    // it went through nginx: its access log has the submission and the event stream
    const access = await readFile(path.join(nginxDir, 'access.log'), 'utf8');
    expect(access).toMatch(/"POST \/api\/v1\/builds\/source\?[^"]*" 20\d/);
    expect(access).toMatch(/"GET \/api\/v1\/builds\/b-[^/]+\/events HTTP\/1\.1" 200/);
  }, 600_000);

  it('examples/ci: the GitHub workflow steps, run as the runner runs them, build into dist/ through nginx, and so does farm-build.sh', async () => {
    // a driver repository checkout with its dkms.conf at the top
    const checkout = await tempDir('ci-checkout');
    await execa('cp', ['-r', `${example('hello')}/.`, checkout]);
    const doc = YAML.parse(await readFile(path.join(packageRoot, 'examples', 'ci', 'github-actions-farm.yml'), 'utf8')) as {
      env: Record<string, string>;
      jobs: Record<string, { steps: Array<{ name?: string; run?: string; env?: Record<string, string> }> }>;
    };
    const steps = doc.jobs['dkms-build']?.steps ?? [];
    const runnerTemp = await tempDir('ci-runner-temp');
    const githubEnv = path.join(runnerTemp, 'github-env');
    await writeFile(githubEnv, '');
    const secrets: Record<string, string> = { KFARM_FARM_TOKEN: token, KFARM_FARM_CA: await readFile(tls.ca, 'utf8') };
    // what the runner does: the workflow's env with the farm's URL and package swapped in, each
    // step's env with its secrets, and what a step appends to $GITHUB_ENV for the steps after it
    const base = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/root',
      ...doc.env,
      KFARM_FARM_URL: url,
      KFARM_PACKAGE: packageRoot,
      KFARM_KERNELS: k61,
      RUNNER_TEMP: runnerTemp,
      GITHUB_ENV: githubEnv,
    };
    for (const step of steps.filter((x) => x.run)) {
      const added = Object.fromEntries(
        (await readFile(githubEnv, 'utf8'))
          .split('\n')
          .filter(Boolean)
          .map((l) => l.split(/=(.*)/s).slice(0, 2)),
      );
      const stepEnv = Object.fromEntries(Object.entries(step.env ?? {}).map(([k, v]) => [k, v.replace(/^\$\{\{ secrets\.(\w+) \}\}$/, (_, n: string) => secrets[n] ?? '')]));
      const ran = await execa('bash', ['-e', '-c', step.run ?? 'false'], { env: { ...base, ...added, ...stepEnv }, extendEnv: false, reject: false, cwd: checkout });
      expect(ran.exitCode, `${step.name}: ${String(ran.stderr)}`).toBe(0);
    }
    expect(await readFile(githubEnv, 'utf8')).toMatch(/^NODE_EXTRA_CA_CERTS=/);
    await builtOnly(path.join(checkout, 'dist'));

    const script = await execa('bash', [path.join(packageRoot, 'examples', 'ci', 'farm-build.sh'), checkout], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/root',
        KFARM_FARM_URL: url,
        KFARM_FARM_TOKEN: token,
        KFARM_PACKAGE: packageRoot,
        KFARM_KERNELS: k61,
        KFARM_OUT: path.join(runnerTemp, 'out'),
        NODE_EXTRA_CA_CERTS: tls.ca,
      },
      extendEnv: false,
      reject: false,
    });
    expect(script.exitCode, String(script.stderr)).toBe(0);
    await builtOnly(path.join(runnerTemp, 'out'));
    // without its required settings it stops before running anything, naming what is missing
    const bare = await execa('bash', [path.join(packageRoot, 'examples', 'ci', 'farm-build.sh')], { env: { PATH: process.env.PATH ?? '' }, extendEnv: false, reject: false });
    expect(bare.exitCode).not.toBe(0);
    expect(String(bare.stderr)).toMatch(/KFARM_FARM_URL/);
  }, 600_000);

  it('passes the build events through as they happen (server-sent events unbuffered): the first long before the end', async () => {
    // builds at once on the 6.1 kernel and 8 s later on the 6.12: a buffered stream would hold
    // every event until the build ends
    const tgz = (await execa('tar', ['-C', fixture('slow-on-612'), '-czf', '-', '.'], { encoding: 'buffer' })).stdout;
    const upload = path.join(nginxDir, 'slow.tgz');
    await writeFile(upload, tgz);
    const script = `const base = process.argv[1]; const auth = { Authorization: 'Bearer ' + process.env.T };
      (async () => {
        const b = await (await fetch(base + '/api/v1/builds/source?kernels=' + encodeURIComponent(process.env.K), { method: 'POST', headers: { ...auth, 'Content-Type': 'application/gzip' }, body: require('fs').readFileSync(process.argv[2]) })).json();
        const res = await fetch(base + '/api/v1/builds/' + b.id + '/events', { headers: { ...auth, Accept: 'text/event-stream' } });
        const times = []; let text = '';
        for await (const chunk of res.body) {
          text += Buffer.from(chunk).toString();
          for (const m of text.matchAll(/^event: (\\w+)$/gm)) if (!times.some((t) => t.at === m.index)) times.push({ at: m.index, type: m[1], ms: Date.now() });
          if (/^event: end$/m.test(text)) break;
        }
        console.log(JSON.stringify(times.map(({ type, ms }) => ({ type, ms }))));
      })();`;
    const run = await execa('node', ['-e', script, url, upload], { env: { NODE_EXTRA_CA_CERTS: tls.ca, T: token, K: `${k61},${k612}` }, reject: false, timeout: 300_000 });
    expect(run.exitCode, run.stderr).toBe(0);
    const events = JSON.parse(run.stdout) as Array<{ type: string; ms: number }>;
    expect(events.at(-1)?.type).toBe('end');
    const spread = (events.at(-1)?.ms ?? 0) - (events[0]?.ms ?? 0);
    expect(spread, JSON.stringify(events)).toBeGreaterThan(4000);
  }, 300_000);

  it("lets an upload bigger than nginx's default 1 MiB through to kfarm, which judges it (its 400, not nginx's 413)", async () => {
    const size = 3 * 1024 * 1024;
    // node's fetch takes no CA option: a child with NODE_EXTRA_CA_CERTS, as the CLI would
    const script = `fetch(process.argv[1] + '/api/v1/builds/source', { method: 'POST', headers: { Authorization: 'Bearer ' + process.env.T, 'Content-Type': 'application/gzip' }, body: Buffer.alloc(${size}, 7) })
      .then(async (r) => console.log(JSON.stringify({ status: r.status, type: r.headers.get('content-type'), text: (await r.text()).slice(0, 300) })))`;
    const run = await execa('node', ['-e', script, url], { env: { NODE_EXTRA_CA_CERTS: tls.ca, T: token }, reject: false });
    expect(run.exitCode, run.stderr).toBe(0);
    const answer = JSON.parse(run.stdout) as { status: number; type: string; text: string };
    expect(answer.status, answer.text).toBe(400);
    expect(answer.type).toMatch(/application\/json/);
  }, 120_000);
});
