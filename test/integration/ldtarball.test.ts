import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import tar from 'tar-stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { packTar } from '../../src/executor/archive.js';
import { gzipSync } from 'node:zlib';
import { oracleImage } from '../helpers/dkms-oracle.js';
import { parseDkmsStatus } from '../helpers/release-dkms.js';
import { debian12Kernels, example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';
import { releaseKernel } from '../helpers/run-driver.js';

/**
 * `kfarm ldtarball` through the CLI: hostile tarballs leave both trees exactly as they were,
 * and what it loads is what the real dkms sees as built and installs: kfarm's own 3-kernel
 * full tarball, and tarballs made by `dkms mktarball` of Debian 12 (3.0.10) and Debian 11 (2.8.4).
 * The trees are written on the host, then bind-mounted into the dkms container at the same
 * path and named with --dkmstree/--sourcetree (the source link is absolute, as dkms makes it).
 */
// setup's debian-12 set, whatever the archive's newest are today
const { k61b: K56, k61: K57, k612: K612 } = await debian12Kernels();
let K510 = ''; // debian-11's newest generic kernel, synced in its test when missing
const runtime = new DockerRuntime();

let out: string;
beforeAll(async () => {
  out = await tempDir('ldtarball-build');
  const built = await kfarm(['build', example('hello'), '--out', out, '--kernels', [K56, K57, K612].join(',')], await isolatedEnv('ldtarball'));
  expect(built.exitCode, built.stderr).toBe(0);
}, 900_000);

/** Every path below root: type, mode, content hash or link target. */
async function snapshot(root: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  const walk = async (dir: string) => {
    for (const name of await readdir(dir)) {
      const p = path.join(dir, name);
      const st = await lstat(p);
      const rel = path.relative(root, p);
      if (st.isSymbolicLink()) result[rel] = `link ${await readlink(p)}`;
      else if (st.isDirectory()) {
        result[rel] = `dir ${st.mode.toString(8)}`;
        await walk(p);
      } else
        result[rel] = `file ${st.mode.toString(8)} ${createHash('sha256')
          .update(await readFile(p))
          .digest('hex')}`;
    }
  };
  await walk(root);
  return result;
}

type Header = Partial<tar.Header> & { name: string; data?: string };
async function rawTarGz(headers: Header[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const h of headers) {
    const { data, ...header } = h;
    await new Promise<void>((resolve, reject) => pack.entry({ ...header, mode: header.mode ?? 0o644 }, data ?? '', (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

const CONF = 'PACKAGE_NAME="hello"\nPACKAGE_VERSION="1.0.0"\nBUILT_MODULE_NAME[0]="hello"\nDEST_MODULE_LOCATION[0]="/extra"\n';
const good = (extra: Header[], conf = CONF): Header[] => [
  { name: 'dkms_main_tree/', type: 'directory' },
  { name: `dkms_main_tree/${K612}/x86_64/module/hello.ko`, data: 'ELF' },
  { name: 'dkms_source_tree/dkms.conf', data: conf },
  ...extra,
];

const trees = (root: string) => ['--dkms-tree', path.join(root, 'var/lib/dkms'), '--source-tree', path.join(root, 'usr/src')];

describe('kfarm ldtarball: hostile tarballs write nothing', () => {
  const hostile: Array<[string, Header[], RegExp, string[]?]> = [
    ['an absolute path', good([{ name: '/etc/cron.d/evil', data: 'x' }]), /"\/etc\/cron.d\/evil": absolute path/],
    ['a .. path', good([{ name: 'dkms_source_tree/../../../../evil', data: 'x' }]), /path with \.\./],
    [
      'a link leaving the tree',
      good([{ name: `dkms_main_tree/${K612}/x86_64/module/x.ko`, type: 'symlink', linkname: '../../../../../../../etc/passwd' }]),
      /points outside the tree/,
    ],
    [
      'a link chain leaving the tree',
      good([
        { name: `dkms_main_tree/${K612}/x86_64/log/a`, type: 'symlink', linkname: 'b/..' },
        { name: `dkms_main_tree/${K612}/x86_64/log/b`, type: 'symlink', linkname: '..' },
        { name: `dkms_main_tree/${K612}/x86_64/c`, type: 'symlink', linkname: 'log/a/..' },
      ]),
      /points outside the tree/,
    ],
    [
      'a write through a source link',
      good([
        { name: 'dkms_source_tree/etc', type: 'symlink', linkname: '/etc' },
        { name: 'dkms_source_tree/etc/evil', data: 'x' },
      ]),
      /lies below the symlink/,
    ],
    ['a device', good([{ name: 'dkms_source_tree/null', type: 'character-device', devmajor: 1, devminor: 3 }]), /device file/],
    ['a fifo', good([{ name: 'dkms_source_tree/p', type: 'fifo' }]), /fifo entries are not allowed/],
    ['a hard link', good([{ name: 'dkms_source_tree/h', type: 'link', linkname: '/etc/shadow' }]), /hard link entries are not allowed/],
    ['too big', good([{ name: 'dkms_source_tree/big', data: 'x'.repeat(5000) }]), /larger than 4000 bytes/, ['--max-bytes', '4000']],
    [
      'too many entries',
      good([
        { name: 'dkms_source_tree/a', data: 'x' },
        { name: 'dkms_source_tree/b', data: 'x' },
      ]),
      /more than 4 entries/,
      ['--max-entries', '4'],
    ],
    ['no dkms.conf', good([]).filter((h) => !h.name.endsWith('dkms.conf')), /no dkms.conf/],
    ['a bad module name', good([], CONF.replace('"hello"', '"../hello"')), /module name "..\/hello" breaks kfarm's naming rules/],
    ['not a tarball at all', [], /not a readable tarball|no dkms.conf/],
  ];

  it.each(hostile)('%s: exit 2, tarball and entry named, both trees as they were, no temp dir left', async (_what, headers, pattern, extraArgs) => {
    const root = await tempDir('ldtarball-hostile');
    // a tree already holding hello for one kernel, so "as it was" is not just "empty"
    const first = await kfarm(['ldtarball', path.join(out, `hello-1.0.0-kernel${K56}-x86_64.dkms.tar.gz`), ...trees(root)]);
    expect(first.exitCode, first.stderr).toBe(0);
    const before = await snapshot(root);
    const file = path.join(root, 'hostile.dkms.tar.gz');
    await writeFile(file, headers.length > 0 ? await rawTarGz(headers) : Buffer.from('garbage, not gzip, not tar\n'.repeat(40)));
    const beforeWithFile = await snapshot(root);
    const r = await kfarm(['ldtarball', file, ...trees(root), ...(extraArgs ?? [])]);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toMatch(pattern);
    const after = await snapshot(root);
    expect(after).toEqual(beforeWithFile);
    expect(Object.keys(after).filter((p) => p.includes('.kfarm-ldtarball-'))).toEqual([]);
    expect(Object.keys(before).length).toBeGreaterThan(10);
  });

  it('a kernel already there is refused (nothing written), and replaced with --force', async () => {
    const root = await tempDir('ldtarball-force');
    const full = path.join(out, 'hello-1.0.0.dkms.tar.gz');
    expect((await kfarm(['ldtarball', path.join(out, `hello-1.0.0-kernel${K57}-x86_64.dkms.tar.gz`), ...trees(root)])).exitCode).toBe(0);
    const before = await snapshot(root);
    const again = await kfarm(['ldtarball', full, ...trees(root)]);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toMatch(new RegExp(`already built for ${K57}/x86_64.*nothing was loaded`));
    expect(again.stderr).toContain('--force');
    expect(await snapshot(root)).toEqual(before);
    const forced = await kfarm(['ldtarball', full, '--force', ...trees(root)]);
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(forced.stdout).toContain(`hello/1.0.0, ${K57}, x86_64: built (replaced)`);
    const after = await snapshot(root);
    expect(
      Object.keys(after)
        .filter((p) => /\/x86_64\/module\/hello\.ko/.test(p))
        .sort(),
    ).toHaveLength(3);
    expect(Object.keys(after).filter((p) => p.includes('.kfarm-ldtarball-'))).toEqual([]);
  });
});

/** Runs a script in a container with these host dirs mounted at the same path. */
async function inDocker(image: string, script: string, mounts: string[]): Promise<{ exitCode: number; output: string }> {
  const r = await execa('docker', ['run', '--rm', ...mounts.flatMap((m) => ['-v', `${m}:${m}`]), image, 'bash', '-c', script], { reject: false, all: true, timeout: 600_000 });
  return { exitCode: r.exitCode ?? -1, output: String(r.all) };
}

/**
 * The real dkms on a tree kfarm loaded: every kernel `built`, `dkms install -k` succeeds for each,
 * then `installed`. Each kernel gets the modules.dep its linux-image package has, so 6.12's .ko.xz
 * counts as built (dkms 3.0.10 takes the suffix from it).
 */
async function dkmsSeesBuilt(image: string, root: string, kernels: readonly string[]): Promise<void> {
  const dkms = `dkms --dkmstree ${root}/var/lib/dkms --sourcetree ${root}/usr/src`;
  const script = [
    'set -u',
    ...kernels.map((k) => `echo 'kernel/fs/fat/fat.ko${k.startsWith('6.12') ? '.xz' : ''}:' > /lib/modules/${k}/modules.dep`),
    `echo @@status; ${dkms} status 2>/dev/null; echo @@installs`,
    ...kernels.map((k) => `${dkms} install hello/1.0.0 -k ${k} >/tmp/i.log 2>&1; rc=$?; [ $rc = 0 ] || cat /tmp/i.log; echo "@@install ${k} $rc"`),
    `echo @@after; ${dkms} status 2>/dev/null`,
  ].join('\n');
  const r = await inDocker(image, script, [root]);
  expect(r.exitCode, r.output).toBe(0);
  const [, status = '', rest = ''] = r.output.split(/@@status\n|@@installs\n/);
  const built = parseDkmsStatus(status).filter((s) => s.module === 'hello' && s.version === '1.0.0' && s.state.startsWith('built'));
  expect(built.map((s) => s.kernel).sort(), r.output).toEqual([...kernels].sort());
  for (const k of kernels) expect(rest, r.output).toContain(`@@install ${k} 0`);
  const after = parseDkmsStatus(r.output.split('@@after\n')[1] ?? '').filter((s) => s.state.startsWith('installed'));
  expect(after.map((s) => s.kernel).sort(), r.output).toEqual([...kernels].sort());
}

/** A release's kernel image (headers, kbuild, gcc, libelf) plus that release's own dkms: it builds and packs for real. */
async function buildingDkmsImage(kernelImage: string, name: string): Promise<string> {
  const dockerfile = Buffer.from(
    `FROM ${kernelImage}\nUSER root\nRUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dkms && apt-get clean && rm -rf /var/lib/apt/lists/*\nLABEL io.kfarm.image=""\n`,
  );
  const info = await runtime.inspectImage(kernelImage);
  const image = `kfarm-test/ldtarball-${name}:${createHash('sha256')
    .update(dockerfile)
    .update(info?.id ?? '')
    .digest('hex')
    .slice(0, 16)}`;
  if (!(await runtime.inspectImage(image))) {
    await runtime.buildImage({
      context: await packTar([{ path: 'Dockerfile', type: 'file', mode: 0o644, data: dockerfile }]),
      tag: image,
      buildArgs: {},
      labels: {},
      onLine: () => undefined,
    });
  }
  return image;
}

describe('kfarm ldtarball: the real dkms sees every kernel built and installs it', () => {
  it("kfarm's full 3-kernel tarball, into debian-12's dkms 3.0.10 (whose own ldtarball loads only the first kernel)", async () => {
    const root = await tempDir('ldtarball-kfarm');
    const r = await kfarm(['ldtarball', path.join(out, 'hello-1.0.0.dkms.tar.gz'), ...trees(root)]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await readlink(path.join(root, 'var/lib/dkms/hello/1.0.0/source'))).toBe(path.join(root, 'usr/src/hello-1.0.0'));
    await dkmsSeesBuilt(await oracleImage(), root, [K56, K57, K612]);
  }, 900_000);

  it('tarballs made by debian-12 `dkms mktarball` (3.0.10): a full one and a binaries-only one, loaded in one call', async () => {
    const work = await tempDir('ldtarball-mk12');
    const image = await oracleImage();
    await mkdir(path.join(work, 'src'));
    for (const f of ['dkms.conf', 'Makefile', 'hello.c']) await writeFile(path.join(work, 'src', f), await readFile(path.join(example('hello'), f)));
    const made = await inDocker(
      image,
      [
        'set -eu',
        `cp -r ${work}/src /usr/src/hello-1.0.0`,
        'dkms add hello/1.0.0',
        `dkms build hello/1.0.0 -k ${K57}`,
        `dkms build hello/1.0.0 -k ${K56}`,
        `dkms mktarball hello/1.0.0 -k ${K57} --archive ${work}/full.dkms.tar.gz`,
        `dkms mktarball hello/1.0.0 -k ${K56} --binaries-only --archive ${work}/bin.dkms.tar.gz`,
        'dpkg-query -W dkms',
      ].join('\n'),
      [work],
    );
    expect(made.exitCode, made.output).toBe(0);
    expect(made.output).toMatch(/dkms\s+3\.0\.10/);
    const root = await tempDir('ldtarball-mk12-tree');
    const r = await kfarm(['ldtarball', path.join(work, 'full.dkms.tar.gz'), path.join(work, 'bin.dkms.tar.gz'), ...trees(root)]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await readFile(path.join(root, 'usr/src/hello-1.0.0/hello.c'))).toEqual(await readFile(path.join(example('hello'), 'hello.c')));
    await dkmsSeesBuilt(image, root, [K57, K56]);
  }, 900_000);

  it('a tarball made by debian-11 `dkms mktarball` (2.8.4), into 2.8.4', async () => {
    K510 = await releaseKernel('debian-11');
    const image = await buildingDkmsImage(`kfarm/debian-11:${K510}`, 'debian-11');
    const work = await tempDir('ldtarball-mk11');
    await mkdir(path.join(work, 'src'));
    for (const f of ['dkms.conf', 'Makefile', 'hello.c']) await writeFile(path.join(work, 'src', f), await readFile(path.join(example('hello'), f)));
    const made = await inDocker(
      image,
      [
        'set -eu',
        `cp -r ${work}/src /usr/src/hello-1.0.0`,
        'dkms add -m hello -v 1.0.0',
        `dkms build -m hello -v 1.0.0 -k ${K510}`,
        `dkms mktarball -m hello -v 1.0.0 -k ${K510}`,
        `cp /var/lib/dkms/hello/1.0.0/tarball/*.tar.gz ${work}/made.dkms.tar.gz`,
        'dpkg-query -W dkms',
      ].join('\n'),
      [work],
    );
    expect(made.exitCode, made.output).toBe(0);
    expect(made.output).toMatch(/dkms\s+2\.8\.4/);
    const root = await tempDir('ldtarball-mk11-tree');
    const r = await kfarm(['ldtarball', path.join(work, 'made.dkms.tar.gz'), ...trees(root)]);
    expect(r.exitCode, r.stderr).toBe(0);
    await dkmsSeesBuilt(image, root, [K510]);
  }, 900_000);
});
