import { access, cp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { listKfarmImages } from '../../src/images/catalog.js';
import type { BuildReport } from '../../src/report/report.js';
import { example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';

/**
 * Names from dkms.conf travel out of the build container and into host file names. Each case
 * here is examples/hello with one directive made hostile: `../`, `/`, a newline, a control
 * character. Each must end as exit 2 (the name is bad on every kernel) naming the directive,
 * and nothing may appear outside --out: --out is a subdir of a fresh temp dir, and afterwards
 * that dir holds only the source and --out, and no file anywhere below it has a name other
 * than plain name characters.
 */
let kernel: string;
const EVIL = `kfarm-names-evil-${process.pid}`;
// eslint-disable-next-line no-control-regex -- the names must reach the report free of control characters: that is what is checked
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

beforeAll(async () => {
  kernel = (await listKfarmImages(new DockerRuntime())).flatMap((i) => i.kernels)[0] ?? 'none';
});

const HELLO = {
  PACKAGE_NAME: '"hello"',
  PACKAGE_VERSION: '"1.0.0"',
  'BUILT_MODULE_NAME[0]': '"hello"',
  'DEST_MODULE_LOCATION[0]': '"/extra"',
};

/** dkms.conf is bash: values are bash words, so $'...' writes a newline or an escape. */
function dkmsConf(overrides: Record<string, string>): string {
  const lines = Object.entries({ ...HELLO, ...overrides }).map(([k, v]) => `${k}=${v}`);
  // the build line names the build dir as dkms does, from whatever the name and version are
  lines.push('MAKE[0]="make -C ${kernel_source_dir} M=${dkms_tree}/${PACKAGE_NAME}/${PACKAGE_VERSION}/build modules"');
  return `${lines.join('\n')}\n`;
}

async function allNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    names.push(entry.name);
    if (entry.isDirectory()) names.push(...(await allNames(path.join(dir, entry.name))));
  }
  return names;
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

const CASES: Array<[string, string, Record<string, string>]> = [
  ['PACKAGE_NAME', '../ leading out', { PACKAGE_NAME: `"../../../../../../../tmp/${EVIL}"` }],
  ['PACKAGE_NAME', 'a slash', { PACKAGE_NAME: '"hel/lo"' }],
  ['PACKAGE_NAME', 'a newline', { PACKAGE_NAME: "$'hello\\nx'" }],
  ['PACKAGE_NAME', 'an escape sequence', { PACKAGE_NAME: "$'hello\\e[31m'" }],
  ['PACKAGE_VERSION', '../ leading out', { PACKAGE_VERSION: `"1.0/../../../../../../../tmp/${EVIL}"` }],
  ['PACKAGE_VERSION', 'a control character', { PACKAGE_VERSION: "$'1.0\\a'" }],
  ['BUILT_MODULE_NAME', '../ leading out', { 'BUILT_MODULE_NAME[0]': '"../hello"' }],
  ['BUILT_MODULE_NAME', 'a newline', { 'BUILT_MODULE_NAME[0]': "$'hello\\nx'" }],
  ['DEST_MODULE_NAME', '../ leading out', { 'DEST_MODULE_NAME[0]': `"../../../../../../../tmp/${EVIL}"` }],
  ['DEST_MODULE_NAME', 'a slash', { 'DEST_MODULE_NAME[0]': '"sub/hello"' }],
  ['DEST_MODULE_NAME', 'a control character', { 'DEST_MODULE_NAME[0]': "$'hello\\x01'" }],
];

describe('names from dkms.conf are data, never paths', () => {
  it.each(CASES)('%s with %s: exit 2 naming the directive, nothing written outside --out', async (directive, _what, overrides) => {
    const top = await tempDir('names');
    const src = path.join(top, 'src');
    const out = path.join(top, 'out');
    await cp(example('hello'), src, { recursive: true });
    await writeFile(path.join(src, 'dkms.conf'), dkmsConf(overrides));

    const r = await kfarm(['build', src, '--out', out, '--kernels', kernel], await isolatedEnv('names'));

    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain('dkms.conf');
    expect(r.stderr).toContain(directive);
    // what the terminal gets is printable: the hostile value is shown escaped, never raw
    expect(r.stderr).not.toMatch(CONTROL);
    expect(r.stdout).not.toMatch(CONTROL);
    // nothing outside --out: the temp dir holds what the test put there and --out, no more
    expect((await readdir(top)).sort()).toEqual(['out', 'src']);
    for (const name of await allNames(top)) expect(name).toMatch(/^[A-Za-z0-9_.+-]+$/);
    expect(await exists(path.join(os.tmpdir(), EVIL))).toBe(false);
    expect(await exists(path.join(os.tmpdir(), `${EVIL}.log`))).toBe(false);
    // and inside it nothing was packed for a module that has no usable name
    expect((await readdir(out)).filter((n) => n.endsWith('.tar.gz'))).toEqual([]);
  });

  it('a name with the other characters kfarm keeps (+ ~) builds', async () => {
    const top = await tempDir('names-ok');
    const src = path.join(top, 'src');
    const out = path.join(top, 'out');
    await cp(example('hello'), src, { recursive: true });
    await writeFile(path.join(src, 'dkms.conf'), dkmsConf({ PACKAGE_NAME: '"hello+x"', PACKAGE_VERSION: '"1.0~rc1"' }));
    const r = await kfarm(['build', src, '--out', out, '--kernels', kernel], await isolatedEnv('names-ok'));
    expect(r.exitCode, r.stderr).toBe(0);
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
    expect(report).toMatchObject({ module: 'hello+x', version: '1.0~rc1' });
    expect(await exists(path.join(out, 'hello+x-1.0~rc1.dkms.tar.gz'))).toBe(true);
  });
});
