import { access, cp, mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debian12Kernels, example, fixture, isolatedEnv, kfarm, kfarmProcess, tempDir } from '../helpers/kfarm-cli.js';
import { PASSPHRASE, repoTestKeys, type RepoTestKeys } from '../helpers/repo-test-key.js';

/**
 * `kfarm publish` and `kfarm build --apt --dnf` through the real CLI: hello built for one
 * debian-12 kernel as bmdeb and kmod-rpm, published to an APT and a DNF repository signed with a
 * test key; --export-key's key verifies InRelease; bad options exit 2 and write nothing;
 * --serve serves the repositories read-only, refusing paths out of the directory, and apt-get
 * in a debian-12 container updates through it.
 */
const { k61: K, k612: K612 } = await debian12Kernels();
const kernelImage = `kfarm/debian-12:${K.replace(/\+/g, '_')}`;

let keys: RepoTestKeys;
let dir: string;
let out: string;
let build: Awaited<ReturnType<typeof kfarm>>;

beforeAll(async () => {
  keys = await repoTestKeys();
  dir = await tempDir('publish-cli');
  out = path.join(dir, 'out');
  // build and publish in one go (kfarm build --apt --dnf)
  build = await kfarm(
    [
      'build',
      example('hello'),
      '--out',
      out,
      '--kernels',
      K,
      '--format',
      'bmdeb,kmod-rpm',
      '--apt',
      path.join(dir, 'built-apt'),
      '--dnf',
      path.join(dir, 'built-rpm'),
      '--repo-key',
      keys.plain,
    ],
    await isolatedEnv('publish-cli'),
  );
}, 900_000);
afterAll(async () => keys?.close());

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

describe('kfarm build --apt --dnf --repo-key', () => {
  it('builds, commits the out dir, then publishes it to both repositories, signed', async () => {
    expect(build.exitCode, build.stderr).toBe(0);
    expect(await exists(path.join(out, 'SHA256SUMS'))).toBe(true);
    expect(build.stdout).toContain(`apt  added      bookworm  hello-modules-${K}_1.0.0_amd64.deb`);
    expect(build.stdout).toMatch(/dnf {2}added {6}Packages\/kmod-hello-/);
    const gpgv = await execa('gpgv', ['--keyring', keys.keyring, path.join(dir, 'built-apt', 'dists', 'bookworm', 'InRelease')], { reject: false });
    expect(gpgv.exitCode, gpgv.stderr).toBe(0);
    expect(await exists(path.join(dir, 'built-rpm', 'repodata', 'repomd.xml.asc'))).toBe(true);
  });

  it('a build that failed on some kernels publishes what was built and keeps its exit status (1)', async () => {
    const apt = path.join(dir, 'partial-apt');
    const rpm = path.join(dir, 'partial-rpm');
    const r = await kfarm(
      [
        'build',
        fixture('fails-on-612'),
        '--out',
        path.join(dir, 'partial'),
        '--kernels',
        `${K},${K612}`,
        '--format',
        'bmdeb,kmod-rpm',
        '--apt',
        apt,
        '--dnf',
        rpm,
        '--repo-key',
        keys.plain,
      ],
      await isolatedEnv('publish-cli'),
    );
    expect(r.exitCode, r.stderr).toBe(1);
    const pool = await readdir(path.join(apt, 'pool', 'main', 'f', 'fails612-dkms-bin'));
    expect(pool).toEqual([`fails612-modules-${K}_0.1_amd64.deb`]);
    const rpms = await readdir(path.join(rpm, 'Packages'));
    expect(rpms.filter((f) => f.startsWith('kmod-fails612-'))).toEqual([`kmod-fails612-${K}-0.1-1.x86_64.rpm`]);
    expect(await exists(path.join(rpm, 'repodata', 'repomd.xml.asc'))).toBe(true);
  }, 900_000);

  it('refuses --apt without --repo-key before building (exit 2, names the option)', async () => {
    const r = await kfarm(
      ['build', example('hello'), '--out', path.join(dir, 'never'), '--kernels', K, '--format', 'bmdeb', '--apt', path.join(dir, 'never-apt')],
      await isolatedEnv('publish-cli'),
    );
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain('--repo-key');
    expect(await exists(path.join(dir, 'never'))).toBe(false);
    expect(await exists(path.join(dir, 'never-apt'))).toBe(false);
  });
});

describe('kfarm publish <out-dir> --apt --dnf --repo-key', () => {
  let r: Awaited<ReturnType<typeof kfarm>>;
  beforeAll(async () => {
    r = await kfarm(['publish', out, '--apt', path.join(dir, 'site', 'apt'), '--dnf', path.join(dir, 'site', 'rpm'), '--repo-key', keys.plain]);
  }, 300_000);

  it('exits 0 with signed InRelease and repomd.xml.asc, saying what was added where', async () => {
    expect(r.exitCode, r.stderr).toBe(0);
    const apt = path.join(dir, 'site', 'apt');
    const rpm = path.join(dir, 'site', 'rpm');
    expect(await exists(path.join(apt, 'dists', 'bookworm', 'InRelease'))).toBe(true);
    expect(await exists(path.join(rpm, 'repodata', 'repomd.xml.asc'))).toBe(true);
    expect(r.stdout).toContain(`apt  added      bookworm  hello-modules-${K}_1.0.0_amd64.deb`);
    expect(r.stdout).toContain(`${path.join(rpm, 'kfarm.repo')}`);
    expect(r.stdout).toContain('--export-key');
    const gpgv = await execa('gpgv', ['--keyring', keys.keyring, path.join(rpm, 'repodata', 'repomd.xml.asc'), path.join(rpm, 'repodata', 'repomd.xml')], { reject: false });
    expect(gpgv.exitCode, gpgv.stderr).toBe(0);
  });

  it('publishing the same out dir again adds nothing (exit 0)', async () => {
    const again = await kfarm(['publish', out, '--apt', path.join(dir, 'site', 'apt'), '--dnf', path.join(dir, 'site', 'rpm'), '--repo-key', keys.plain]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toContain(': 0 added, 1 already there');
  }, 300_000);

  it('--export-key writes only the public key, and InRelease verifies with it', async () => {
    const key = path.join(dir, 'exported', 'kfarm.gpg');
    await mkdir(path.dirname(key));
    const e = await kfarm(['publish', '--export-key', key, '--repo-key', keys.plain]);
    expect(e.exitCode, e.stderr).toBe(0);
    expect(await readdir(path.dirname(key))).toEqual(['kfarm.gpg']);
    expect((await readFile(key)).equals(await readFile(keys.keyring))).toBe(true);
    const gpgv = await execa('gpgv', ['--keyring', key, path.join(dir, 'site', 'apt', 'dists', 'bookworm', 'InRelease')], { reject: false });
    expect(gpgv.exitCode, gpgv.stderr).toBe(0);
  });
});

describe('kfarm publish --keep', () => {
  it('goes to both publishers: hello 1.1.0 with --keep 1 takes 1.0.0 out of the APT suite and the DNF index', async () => {
    const src = path.join(dir, 'hello-1.1.0');
    await cp(example('hello'), src, { recursive: true });
    const conf = path.join(src, 'dkms.conf');
    await writeFile(conf, (await readFile(conf, 'utf8')).replace('PACKAGE_VERSION="1.0.0"', 'PACKAGE_VERSION="1.1.0"'));
    const out110 = path.join(dir, 'out110');
    const built = await kfarm(['build', src, '--out', out110, '--kernels', K, '--format', 'bmdeb,kmod-rpm'], await isolatedEnv('publish-cli-110'));
    expect(built.exitCode, built.stderr).toBe(0);
    // hello 1.0.0 for the 6.12 kernel too: another package name, which only keep takes out of the suite
    const out612 = path.join(dir, 'out612');
    const built612 = await kfarm(['build', example('hello'), '--out', out612, '--kernels', K612, '--format', 'bmdeb'], await isolatedEnv('publish-cli'));
    expect(built612.exitCode, built612.stderr).toBe(0);
    const targets = ['--apt', path.join(dir, 'keep', 'apt'), '--dnf', path.join(dir, 'keep', 'rpm'), '--repo-key', keys.plain];
    const first = await kfarm(['publish', out, out612, ...targets]); // out612 holds no RPM: fine, out does
    expect(first.exitCode, first.stderr).toBe(0);
    const second = await kfarm(['publish', out110, ...targets, '--keep', '1']);
    expect(second.exitCode, second.stderr).toBe(0);
    expect(second.stdout).toContain(`apt  removed    bookworm  hello-modules-${K612} 1.0.0 (--keep)`);
    expect(second.stdout).toContain('1 leave the index (--keep)');
    const packages = await readFile(path.join(dir, 'keep', 'apt', 'dists', 'bookworm', 'main', 'binary-amd64', 'Packages'), 'utf8');
    expect(packages).toContain('Version: 1.1.0');
    expect(packages).not.toContain('Version: 1.0.0');
    // the metapackage now depends on the older 6.1 kernel's package: reprepro took it with an epoch, above the one machines have
    expect(packages).toMatch(/Package: hello-modules-amd64\n(?:.*\n)*?Version: 1:6\.1\.0\./);
  }, 900_000);
});

describe('kfarm publish: bad input exits 2 and writes nothing', () => {
  it.each([
    ['no --repo-key', [], '--repo-key <file> is missing'],
    ['a --repo-key that does not exist', ['--repo-key', '/nonexistent/key.asc'], '--repo-key /nonexistent/key.asc'],
    ['a public key', ['PUBLIC'], '--repo-key: repository key'],
  ])('%s', async (_what, keyArgs, said) => {
    const args = keyArgs[0] === 'PUBLIC' ? ['--repo-key', keys.publicOnly] : keyArgs;
    const target = path.join(dir, 'refused');
    const r = await kfarm(['publish', out, '--apt', path.join(target, 'apt'), '--dnf', path.join(target, 'rpm'), ...args]);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain(said);
    expect(await exists(target)).toBe(false);
  });

  it('a protected key takes its passphrase from KFARM_REPO_KEY_PASSPHRASE only', async () => {
    const key = path.join(dir, 'protected.gpg');
    const without = await kfarm(['publish', '--export-key', key, '--repo-key', keys.protected], { KFARM_REPO_KEY_PASSPHRASE: '' });
    expect(without.exitCode, without.stderr).toBe(2);
    expect(without.stderr).toContain('KFARM_REPO_KEY_PASSPHRASE');
    expect(await exists(key)).toBe(false);
    const withIt = await kfarm(['publish', '--export-key', key, '--repo-key', keys.protected], { KFARM_REPO_KEY_PASSPHRASE: PASSPHRASE });
    expect(withIt.exitCode, withIt.stderr).toBe(0);
    expect(await exists(key)).toBe(true);
  });

  it('kfarm build --apt without a deb format is refused before building (exit 2, names --format)', async () => {
    const r = await kfarm(
      ['build', example('hello'), '--out', path.join(dir, 'never2'), '--kernels', K, '--apt', path.join(dir, 'never2-apt'), '--repo-key', keys.plain],
      await isolatedEnv('publish-cli'),
    );
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain('--apt needs APT packages: add bmdeb and/or dkms-deb to --format');
    expect(await exists(path.join(dir, 'never2'))).toBe(false);
  });

  it('--serve with publish targets is refused (exit 2)', async () => {
    const r = await kfarm(['publish', '--serve', '0', out, '--apt', path.join(dir, 'never3'), '--repo-key', keys.plain]);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain('--serve <port> takes exactly one directory');
    expect(await exists(path.join(dir, 'never3'))).toBe(false);
  });

  it('no target: exit 2, naming --apt and --dnf', async () => {
    const r = await kfarm(['publish', out, '--repo-key', keys.plain]);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain('--apt <dir>, --dnf <dir>');
  });
});

/** a raw GET: the path exactly as given (no URL normalisation of `..`) */
function get(port: number, rawPath: string): Promise<{ status: number; type: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: rawPath, method: 'GET' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('kfarm publish --serve <port> <dir>', () => {
  const site = () => path.join(dir, 'site');
  let server: ReturnType<typeof kfarmProcess>;
  let port = 0;

  beforeAll(async () => {
    // inside the served dir: a link out to /etc, a link to a file out, a link that stays inside
    await writeFile(path.join(dir, 'secret.txt'), 'not for the web\n');
    await symlink('/etc', path.join(site(), 'etc-link'));
    await symlink(path.join(dir, 'secret.txt'), path.join(site(), 'secret-link'));
    await symlink('apt/dists', path.join(site(), 'dists-link'));
    server = kfarmProcess(['publish', '--serve', '0', site()]);
    port = await new Promise<number>((resolve, reject) => {
      let seen = '';
      server.stdout?.on('data', (c: Buffer) => {
        seen += c.toString();
        const m = /at http:\/\/127\.0\.0\.1:(\d+)\//.exec(seen);
        if (m) resolve(Number(m[1]));
      });
      void server.then((r) => reject(new Error(`kfarm publish --serve ended: ${String(r.all)}`)));
    });
  }, 60_000);
  afterAll(() => {
    if (server?.exitCode === null) server.kill('SIGKILL');
  });

  it('serves files with their content types, following links that stay inside', async () => {
    const inRelease = await get(port, '/apt/dists/bookworm/InRelease');
    expect(inRelease.status).toBe(200);
    expect(inRelease.body.equals(await readFile(path.join(site(), 'apt', 'dists', 'bookworm', 'InRelease')))).toBe(true);
    expect((await get(port, '/dists-link/bookworm/InRelease')).status).toBe(200);
    expect((await get(port, '/rpm/repodata/repomd.xml')).type).toBe('application/xml');
    const deb = await get(port, `/apt/pool/main/h/hello-dkms-bin/hello-modules-${K}_1.0.0_amd64.deb`);
    expect([deb.status, deb.type]).toEqual([200, 'application/vnd.debian.binary-package']);
    const rpms = (await readdir(path.join(site(), 'rpm', 'Packages'))).filter((f) => f.endsWith('.rpm'));
    const rpm = await get(port, `/rpm/Packages/${rpms[0]}`);
    expect([rpm.status, rpm.type]).toEqual([200, 'application/x-rpm']);
    const gz = (await readdir(path.join(site(), 'rpm', 'repodata'))).find((f) => f.endsWith('.gz'));
    expect((await get(port, `/rpm/repodata/${gz}`)).type).toBe('application/gzip');
    expect((await get(port, '/apt/no-such-file')).status).toBe(404);
  });

  it('refuses .. (plain and encoded) and symlinks leading out of the directory', async () => {
    for (const p of ['/../secret.txt', '/apt/../../secret.txt', '/%2e%2e/secret.txt', '/apt/%2E%2E/%2e%2e/secret.txt', '/..%2fsecret.txt']) {
      const r = await get(port, p);
      expect(r.status, p).toBe(403);
      expect(r.body.toString(), p).not.toContain('not for the web');
    }
    for (const p of ['/etc-link/passwd', '/secret-link']) {
      const r = await get(port, p);
      expect(r.status, p).toBe(403);
      expect(r.body.toString(), p).not.toMatch(/root:|not for the web/);
    }
  });

  it('is read-only: PUT and DELETE are refused (405)', async () => {
    for (const method of ['PUT', 'DELETE']) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: '/apt/dists/bookworm/InRelease', method }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end('x');
      });
      expect(status, method).toBe(405);
    }
  });

  it('apt-get update and apt-get download in a debian-12 container go through the served repository, trusting only the test key', async () => {
    const script = [
      'rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*',
      `echo "deb [signed-by=/key.gpg] http://127.0.0.1:${port}/apt bookworm main" > /etc/apt/sources.list.d/kfarm.list`,
      'apt-get update 2>&1; echo "@@update $?"',
      `cd /tmp && apt-get download hello-modules-${K} 2>&1; echo "@@download $?"`,
      `ls /tmp/hello-modules-${K}_1.0.0_amd64.deb && echo @@deb`,
    ].join('\n');
    const r = await execa('docker', ['run', '--rm', '--network', 'host', '-v', `${keys.keyring}:/key.gpg:ro`, '--entrypoint', 'bash', kernelImage, '-c', script], {
      reject: false,
      timeout: 180_000,
    });
    expect(r.stdout, r.stderr).toContain('@@update 0');
    expect(r.stdout).not.toMatch(/^(W|E): /m);
    expect(r.stdout).toContain(`http://127.0.0.1:${port}/apt bookworm/main amd64 Packages`);
    expect(r.stdout).toContain('@@download 0');
    expect(r.stdout).toContain('@@deb');
  }, 200_000);

  it('stops on SIGINT with exit 0', async () => {
    server.kill('SIGINT');
    const r = await server;
    expect(r.exitCode, String(r.all)).toBe(0);
  });
});
