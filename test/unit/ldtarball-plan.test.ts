import { describe, expect, it } from 'vitest';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { mergePlans, planTarball, type RawEntry } from '../../src/ldtarball/plan.js';
import { readConfNames } from '../../src/ldtarball/dkms-conf-names.js';

const CONF = 'PACKAGE_NAME="hello"\nPACKAGE_VERSION="1.0.0"\nBUILT_MODULE_NAME[0]="hello"\nDEST_MODULE_LOCATION[0]="/extra"\n';
const K = '6.1.0-57-amd64';

const file = (name: string, data = 'x', mode = 0o644): RawEntry => ({ name, type: 'file', size: Buffer.byteLength(data), mode, data: Buffer.from(data) });
const dir = (name: string): RawEntry => ({ name, type: 'directory', size: 0, mode: 0o755 });
const link = (name: string, linkname: string): RawEntry => ({ name, type: 'symlink', size: 0, mode: 0o777, linkname });
const other = (name: string, type: string, linkname?: string): RawEntry => ({ name, type, size: 0, mode: 0o644, linkname });

/** `dkms mktarball` 3.0.10's full layout, with its ./ prefix */
function full(extra: RawEntry[] = [], conf = CONF): RawEntry[] {
  return [
    dir('./'),
    dir('./dkms_main_tree/'),
    dir(`./dkms_main_tree/${K}/`),
    dir(`./dkms_main_tree/${K}/x86_64/`),
    dir(`./dkms_main_tree/${K}/x86_64/module/`),
    file(`./dkms_main_tree/${K}/x86_64/module/hello.ko`, 'ELF'),
    dir(`./dkms_main_tree/${K}/x86_64/log/`),
    file(`./dkms_main_tree/${K}/x86_64/log/make.log`, 'make'),
    dir('./dkms_source_tree/'),
    file('./dkms_source_tree/dkms.conf', conf),
    file('./dkms_source_tree/hello.c', 'int x;'),
    ...extra,
  ];
}

function refusal(entries: RawEntry[], limits = { maxBytes: 1_000_000, maxEntries: 1000 }): { code: string; message: string } {
  try {
    planTarball('t.dkms.tar.gz', entries, limits);
  } catch (err) {
    if (isKfarmError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('the plan was not refused');
}

describe('ldtarball plan: layouts it loads', () => {
  it('a full tarball: every kernel, the source, names from dkms.conf', () => {
    const k2 = '6.12.117+deb12-amd64';
    const plan = planTarball(
      't',
      full([dir(`dkms_main_tree/${k2}/x86_64/module/`), file(`dkms_main_tree/${k2}/x86_64/module/hello.ko.xz`, 'XZ'), file('dkms_main_tree/dkms_dbversion', '2.0.0\n')]),
    );
    expect(plan).toMatchObject({ module: 'hello', version: '1.0.0', kind: 'full' });
    expect(plan.kernels.map((k) => `${k.kernel}/${k.arch}`)).toEqual([`${K}/x86_64`, `${k2}/x86_64`]);
    expect(plan.kernels[0]?.files.map((f) => f.path)).toEqual(['module', 'module/hello.ko', 'log', 'log/make.log']);
    expect(plan.source.map((f) => f.path)).toEqual(['dkms.conf', 'hello.c']);
  });

  it('binaries-only: the source is dkms.conf alone', () => {
    const plan = planTarball('t', [
      file(`dkms_main_tree/${K}/x86_64/module/hello.ko`),
      file('dkms_binaries_only/dkms.conf', CONF),
      file('dkms_binaries_only/PACKAGE_NAME', 'hello\n'),
    ]);
    expect(plan.kind).toBe('binaries-only');
    expect(plan.source).toEqual([{ path: 'dkms.conf', type: 'file', mode: 0o644, data: Buffer.from(CONF) }]);
  });

  it('a source link leading out is carried as a link; a link inside a kernel dir that stays inside is kept', () => {
    const plan = planTarball('t', full([link('dkms_source_tree/README.gz', '/usr/share/doc/x/README.gz'), link(`dkms_main_tree/${K}/x86_64/module/alias.ko`, 'hello.ko')]));
    expect(plan.source).toContainEqual({ path: 'README.gz', type: 'symlink', mode: 0o777, linkname: '/usr/share/doc/x/README.gz' });
    // the kernel dir's link is written as a link, next to the module it names
    expect(plan.kernels).toHaveLength(1);
    expect(plan.kernels[0]?.files).toContainEqual({ path: 'module/alias.ko', type: 'symlink', mode: 0o777, linkname: 'hello.ko' });
    expect(plan.kernels[0]?.files.map((f) => f.path)).toEqual(['module', 'module/hello.ko', 'log', 'log/make.log', 'module/alias.ko']);
  });

  it('modes are fixed: 0755 for executables, 0644 else', () => {
    const plan = planTarball('t', full([file('dkms_source_tree/run.sh', '#!/bin/sh', 0o4777)]));
    expect(plan.source.find((f) => f.path === 'run.sh')?.mode).toBe(0o755);
  });
});

describe('ldtarball plan: hostile tarballs are refused, naming tarball and entry', () => {
  it.each([
    ['an absolute path', full([file('/etc/passwd', 'root')]), /"\/etc\/passwd": absolute path/],
    ['a .. path', full([file('dkms_source_tree/../../evil', 'x')]), /path with \.\./],
    ['a link leaving the kernel dir', full([link(`dkms_main_tree/${K}/x86_64/module/x.ko`, '/lib/modules/x.ko')]), /points outside the tree/],
    [
      'a link chain leaving the kernel dir',
      full([link(`dkms_main_tree/${K}/x86_64/log/a`, 'b/..'), link(`dkms_main_tree/${K}/x86_64/log/b`, '..'), link(`dkms_main_tree/${K}/x86_64/c`, 'log/a/..')]),
      /points outside the tree/,
    ],
    ['a file below a link', full([link('dkms_source_tree/d', '/etc'), file('dkms_source_tree/d/cron', 'x')]), /lies below the symlink/],
    ['a link outside the source and kernel dirs', full([link('dkms_binaries_only/dkms.conf', '/etc/shadow')]), /symlink .*outside dkms_source_tree/],
    ['a character device', full([other('dkms_source_tree/null', 'character-device')]), /device file \(character-device\) entries are not allowed/],
    ['a block device', full([other('dkms_source_tree/sda', 'block-device')]), /device file/],
    ['a fifo', full([other('dkms_source_tree/p', 'fifo')]), /fifo entries are not allowed/],
    ['a hard link', full([other('dkms_source_tree/h', 'link', 'dkms_source_tree/hello.c')]), /hard link entries are not allowed/],
    ['a path named twice', full([file('dkms_source_tree/hello.c', 'again')]), /appears twice/],
    ['an entry outside the DKMS dirs', full([file('etc/cron.d/x', 'x')]), /not part of a DKMS tarball/],
  ])('%s', (_what, entries, pattern) => {
    const r = refusal(entries);
    expect(r.code).toBe('UNSAFE_ARCHIVE');
    expect(r.message).toMatch(/^t\.dkms\.tar\.gz: /);
    expect(r.message).toMatch(pattern);
    expect(r.message).toMatch(/nothing was loaded/);
  });

  it('too big', () => {
    const r = refusal(full([file('dkms_source_tree/big', 'x'.repeat(2000))]), { maxBytes: 1000, maxEntries: 1000 });
    expect(r).toMatchObject({ code: 'SOURCE_TOO_LARGE' });
    expect(r.message).toMatch(/larger than 1000 bytes/);
  });

  it('too many entries', () => {
    const r = refusal(full(), { maxBytes: 1_000_000, maxEntries: 5 });
    expect(r.message).toMatch(/more than 5 entries/);
  });

  it('no dkms.conf', () => {
    const r = refusal(full().filter((e) => !e.name.endsWith('dkms.conf')));
    expect(r.code).toBe('DKMS_CONF_MISSING');
    expect(r.message).toMatch(/no dkms.conf in dkms_source_tree\/ or dkms_binaries_only\//);
  });

  it.each([
    ['a bad module name', CONF.replace('"hello"', '"../../etc"'), /module name "..\/..\/etc" breaks kfarm's naming rules/],
    ['a module name with a space', CONF.replace('"hello"', '"he llo"'), /module name "he llo"/],
    ['a bad version', CONF.replace('"1.0.0"', '"1:0"'), /module version "1:0"/],
  ])('%s', (_what, conf, pattern) => {
    expect(refusal(full([], conf)).message).toMatch(pattern);
  });

  it('a name that only running dkms.conf would give', () => {
    const r = refusal(full([], CONF.replace('"1.0.0"', '"$(cat /etc/version)"')));
    expect(r).toMatchObject({ code: 'DKMS_CONF_INVALID' });
    expect(r.message).toMatch(/PACKAGE_VERSION is not set to a plain value/);
  });

  it.each([
    ['a bad kernel release', `dkms_main_tree/6.1 evil/x86_64/module/hello.ko`, /kernel release "6.1 evil"/],
    ['a bad arch', `dkms_main_tree/${K}/X86-64/module/hello.ko`, /arch "X86-64"/],
  ])('%s', (_what, name, pattern) => {
    expect(refusal(full([file(name)])).message).toMatch(pattern);
  });

  it('a kernel dir without a module', () => {
    expect(refusal(full([file('dkms_main_tree/6.1.0-56-amd64/x86_64/log/make.log')])).message).toMatch(/"dkms_main_tree\/6.1.0-56-amd64\/x86_64": holds no module file/);
  });

  it('a source-only tarball: nothing built to load', () => {
    expect(refusal([dir('dkms_main_tree'), file('dkms_source_tree/dkms.conf', CONF)]).message).toMatch(/no kernel's binaries/);
  });
});

describe('ldtarball: several tarballs of one module', () => {
  const perKernel = (k: string) => planTarball(k, [file(`dkms_main_tree/${k}/x86_64/module/hello.ko`), file('dkms_binaries_only/dkms.conf', CONF)]);

  it('merge kernels; a full tarball gives the source', () => {
    const merged = mergePlans([perKernel('6.1.0-56-amd64'), planTarball('full', full())]);
    expect(merged).toHaveLength(1);
    expect(merged[0]?.sourceFrom).toBe('full');
    expect(merged[0]?.kernels.map((k) => k.kernel)).toEqual(['6.1.0-56-amd64', K]);
  });

  it('the same kernel twice is refused', () => {
    expect(() => mergePlans([perKernel(K), planTarball('full', full())])).toThrow(/both hold hello\/1.0.0 for 6.1.0-57-amd64\/x86_64/);
  });

  it('a different dkms.conf for the same module/version is refused', () => {
    expect(() => mergePlans([perKernel('6.1.0-56-amd64'), planTarball('full', full([], `${CONF}AUTOINSTALL=yes\n`))])).toThrow(/different dkms.conf/);
  });
});

describe('dkms.conf names without running it', () => {
  it.each([
    ['PACKAGE_NAME=hello\nPACKAGE_VERSION=1.0', { name: 'hello', version: '1.0' }],
    ['PACKAGE_NAME=\'hello\' # comment\n  PACKAGE_VERSION="2"', { name: 'hello', version: '2' }],
    ['PACKAGE_NAME="a"\nPACKAGE_NAME="b"', { name: 'b', version: null }],
    ['PACKAGE_NAME="$X"\nPACKAGE_VERSION=`date`', { name: null, version: null }],
  ])('%j', (conf, names) => {
    expect(readConfNames(conf)).toEqual(names);
  });
});
