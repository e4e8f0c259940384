import { availableParallelism } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';
import type { ContainerBuildOutput } from '../../src/worker/run-in-container.js';
import { defaultKernels, example } from '../helpers/kfarm-cli.js';
import { modinfoField, releaseKernel, runDriver, sectionNames } from '../helpers/run-driver.js';

/**
 * The dkms.conf language, one fixture per directive and per failure reason
 * (test/fixtures/dkms-language/), through driver.sh alone: the worker's locked-down container
 * for one kernel, no queue or CLI. Each release's kernels are built by that release's rules:
 * debian-11 as dkms 2.8.4, debian-12 as 3.0.10, debian-13 as 3.2.2 (docs/dkms-releases.md);
 * where they differ, the case runs on each.
 */
const fixture = (name: string) => path.join(packageRoot, 'test', 'fixtures', 'dkms-language', name);

let k61 = '';
let k612 = '';
let k11 = '';
let k13 = '';

beforeAll(async () => {
  const d12 = (await defaultKernels()).split(',');
  k61 =
    d12
      .filter((k) => k.startsWith('6.1.'))
      .sort()
      .at(-1) ?? '';
  k612 = d12.find((k) => k.startsWith('6.12.')) ?? '';
  expect(k61, 'no debian-12 6.1 kernel held: run scripts/setup.sh').not.toBe('');
  expect(k612, 'no debian-12 6.12 kernel held: run scripts/setup.sh').not.toBe('');
  k11 = await releaseKernel('debian-11');
  k13 = await releaseKernel('debian-13');
}, 1_500_000);

const T = 300_000;
const log = (out: ContainerBuildOutput) => out.log.toString('utf8');
const why = (out: ContainerBuildOutput) => `${out.verdict} ${out.reason ?? ''}: ${out.message ?? ''}\n${log(out).slice(-3000)}`;
const module = (out: ContainerBuildOutput, name: string) => {
  const m = out.modules.find((x) => x.destName === name);
  if (!m?.data) throw new Error(`no ${name} in the output: ${why(out)}`);
  return { ...m, data: m.data };
};

describe.concurrent('directives', () => {
  it(
    'MAKE[] / MAKE_MATCH[]: the matching MAKE on 6.12, MAKE[0] elsewhere, each with -j and KERNELRELEASE',
    async () => {
      const [on61, on612] = await Promise.all([k61, k612].map((kernel) => runDriver({ source: fixture('make-match'), kernel })));
      expect(on61?.verdict, why(on61!)).toBe('built');
      expect(on612?.verdict, why(on612!)).toBe('built');
      expect(on61!.driver.makeInvocation).toMatch(new RegExp(`^make -j${availableParallelism()} KERNELRELEASE=${k61.replace(/[.+]/g, '\\$&')} -C /lib/modules/`));
      expect(on61!.driver.makeInvocation).not.toContain('KFARM_VARIANT');
      expect(on612!.driver.makeInvocation).toContain('KFARM_VARIANT=made-for-612');
      const a = module(on61!, 'dl_make_match');
      const b = module(on612!, 'dl_make_match');
      expect(await modinfoField(a.data, a.suffix, 'variant')).toBe('default');
      expect(await modinfoField(b.data, b.suffix, 'variant')).toBe('made-for-612');
    },
    T,
  );

  it(
    'SOURCE_DATE_EPOCH compiles with one job (make.log in completion order would differ between builds), KFARM_JOBS still wins',
    async () => {
      const [reproducible, told] = await Promise.all([
        runDriver({ source: fixture('make-match'), kernel: k61, options: { sourceDateEpoch: 1700000000 } }),
        runDriver({ source: fixture('make-match'), kernel: k61, options: { sourceDateEpoch: 1700000000, makeJobs: 3 } }),
      ]);
      expect(reproducible.verdict, why(reproducible)).toBe('built');
      expect(reproducible.driver.makeInvocation).toMatch(/^make -j1 KERNELRELEASE=/);
      expect(told.driver.makeInvocation).toMatch(/^make -j3 KERNELRELEASE=/);
    },
    T,
  );

  it(
    'PATCH[] / PATCH_MATCH[]: every unmatched patch everywhere, a matched one only where it matches',
    async () => {
      const [on61, on612] = await Promise.all([k61, k612].map((kernel) => runDriver({ source: fixture('patch'), kernel })));
      expect(on61!.verdict, why(on61!)).toBe('built');
      expect(on612!.verdict, why(on612!)).toBe('built');
      const a = module(on61!, 'dl_patch');
      const b = module(on612!, 'dl_patch');
      expect(await modinfoField(a.data, a.suffix, 'variant')).toBe('default');
      expect(await modinfoField(b.data, b.suffix, 'variant')).toBe('patched-for-612');
    },
    T,
  );

  it(
    'PRE_BUILD runs in the build dir with the kernel, umask 022, and CC as each release gives it',
    async () => {
      const runs = await Promise.all([k11, k61, k13].map((kernel) => runDriver({ source: fixture('pre-build'), kernel })));
      const saw = await Promise.all(
        runs.map(async (out) => {
          expect(out.verdict, why(out)).toBe('built');
          const m = module(out, 'dl_pre_build');
          return modinfoField(m.data, m.suffix, 'prebuild');
        }),
      );
      // 2.8.4 takes CC from the headers' .kernelvariables (Debian's say gcc-N), 3.0.10 and
      // 3.2.2 from CONFIG_CC_VERSION_TEXT
      expect(saw[0]).toBe(`kernel=${k11} cwd=build umask=0022 cc=gcc-10`);
      expect(saw[1]).toBe(`kernel=${k61} cwd=build umask=0022 cc=gcc-12`);
      expect(saw[2]).toMatch(new RegExp(`^kernel=${k13.replace(/[.+]/g, '\\$&')} cwd=build umask=0022 cc=(x86_64-linux-gnu-)?gcc-1[0-9]$`));
    },
    T,
  );

  it(
    'a failing PRE_BUILD: 2.8.4 and 3.0.10 go on to make, 3.2.2 stops the build (script-failed)',
    async () => {
      const [d11, d12, d13] = await Promise.all([k11, k61, k13].map((kernel) => runDriver({ source: fixture('pre-build-fails'), kernel })));
      expect(d11!.verdict, why(d11!)).toBe('built');
      expect(d12!.verdict, why(d12!)).toBe('built');
      expect(log(d12!)).toContain('the pre_build script exited with status 3 (dkms 3.0 ignores it)');
      expect(d13!.verdict, why(d13!)).toBe('failed');
      expect(d13!.reason).toBe('script-failed');
      expect(d13!.message).toContain('fail.sh exited with status 3');
      expect(d13!.makeLog?.toString()).toContain('fail.sh: refusing on purpose');
    },
    T,
  );

  it(
    'a failing POST_BUILD: 3.0.10 ignores it, 3.2.2 fails the build with its output in make.log',
    async () => {
      const [d12, d13] = await Promise.all([k61, k13].map((kernel) => runDriver({ source: fixture('post-build-fails'), kernel })));
      expect(d12!.verdict, why(d12!)).toBe('built');
      expect(d13!.verdict, why(d13!)).toBe('failed');
      expect(d13!.reason).toBe('script-failed');
      expect(d13!.makeLog?.toString()).toContain('POST_BUILD refusing on purpose');
    },
    T,
  );

  it(
    'POST_ADD runs in the source dir after dkms add, before the build copies it',
    async () => {
      const out = await runDriver({ source: fixture('post-add'), kernel: k61 });
      expect(out.verdict, why(out)).toBe('built');
      const m = module(out, 'dl_post_add');
      // dkms exports nothing to POST_ADD
      expect(await modinfoField(m.data, m.suffix, 'postadd')).toBe('yes kernelver=');
    },
    T,
  );

  it(
    'two modules: BUILT_MODULE_LOCATION[], DEST_MODULE_NAME[], DEST_MODULE_LOCATION[] and STRIP[]',
    async () => {
      const out = await runDriver({ source: fixture('multi-module'), kernel: k61 });
      expect(out.verdict, why(out)).toBe('built');
      expect(out.modules.map((m) => [m.builtName, m.builtLocation, m.destName, m.destLocation, m.installLocation])).toEqual([
        ['dl_multi_a', '', 'dl_multi_a', '/updates', '/updates/dkms'],
        ['dl_multi_b', 'sub/', 'dl_multi_renamed', '/kernel/drivers/misc', '/updates/dkms'],
      ]);
      // strip -g unless STRIP says no: Debian's kernels build modules with debug info
      expect(await sectionNames(module(out, 'dl_multi_a').data)).not.toContain('.debug_info');
      expect(await sectionNames(module(out, 'dl_multi_renamed').data)).toContain('.debug_info');
    },
    T,
  );

  it(
    'BUILD_EXCLUSIVE_ARCH excludes other arches and says which directive',
    async () => {
      const out = await runDriver({ source: fixture('exclusive-arch'), kernel: k61 });
      expect(out.verdict, why(out)).toBe('excluded');
      expect(out.message).toContain('BUILD_EXCLUSIVE_ARCH="^aarch64$" does not match x86_64');
    },
    T,
  );

  it(
    'BUILD_EXCLUSIVE_CONFIG: options that must be set and that must not (3.0.10 and 3.2.2; 2.8.4 has none)',
    async () => {
      const [on61, on612] = await Promise.all([k61, k612].map((kernel) => runDriver({ source: fixture('exclusive-config'), kernel })));
      expect(on61!.verdict, why(on61!)).toBe('built');
      expect(on612!.verdict, why(on612!)).toBe('excluded');
      expect(on612!.message).toContain('CONFIG_MODULE_COMPRESS_XZ is set');
      // the same directive given by --directive: 3.0.10 excludes, 2.8.4 does not know it
      const directives = ['BUILD_EXCLUSIVE_CONFIG=!CONFIG_MODULES'];
      const [d11, d12] = await Promise.all([k11, k61].map((kernel) => runDriver({ source: fixture('exclusive-config'), kernel, options: { directives } })));
      expect(d11!.verdict, why(d11!)).toBe('built');
      expect(d12!.verdict, why(d12!)).toBe('excluded');
      expect(log(d12!)).toContain('DIRECTIVE: BUILD_EXCLUSIVE_CONFIG="!CONFIG_MODULES"');
    },
    T,
  );

  it(
    'BUILD_EXCLUSIVE_KERNEL_MIN / _MAX exclude on 3.2.2 and mean nothing to 3.0.10',
    async () => {
      const runs = await Promise.all([
        runDriver({ source: fixture('exclusive-kernel-min'), kernel: k13 }),
        runDriver({ source: fixture('exclusive-kernel-max'), kernel: k13 }),
        runDriver({ source: fixture('exclusive-kernel-min'), kernel: k61 }),
        runDriver({ source: fixture('exclusive-kernel-max'), kernel: k61 }),
      ]);
      const [min13, max13, min61, max61] = runs;
      // k13 is a 7.x kernel (trixie-backports)
      expect(k13).toMatch(/^7\./);
      expect(min13.verdict, why(min13)).toBe('excluded');
      expect(min13.message).toContain('BUILD_EXCLUSIVE_KERNEL_MIN="7.4"');
      expect(max13.verdict, why(max13)).toBe('excluded');
      expect(max13.message).toContain('BUILD_EXCLUSIVE_KERNEL_MAX="7.0"');
      expect(min61.verdict, why(min61)).toBe('built');
      expect(max61.verdict, why(max61)).toBe('built');
    },
    T,
  );

  it(
    'CLEAN runs in the build dir before make on 3.0.10; 3.2.2 runs no CLEAN',
    async () => {
      const [d12, d13] = await Promise.all([k61, k13].map((kernel) => runDriver({ source: fixture('clean'), kernel })));
      expect(d12!.verdict, why(d12!)).toBe('built');
      expect(d13!.verdict, why(d13!)).toBe('failed');
      expect(d13!.reason).toBe('make-failed');
      expect(d13!.makeLog?.toString()).toContain('cleaned.h');
    },
    T,
  );

  it(
    'make gets -j from nproc in the container, as dkms, or the -j asked for',
    async () => {
      const out = await runDriver({ source: example('hello'), kernel: k61, options: { makeJobs: 3 } });
      expect(out.verdict, why(out)).toBe('built');
      expect(out.driver.makeInvocation).toMatch(/^make -j3 KERNELRELEASE=/);
    },
    T,
  );

  it(
    '--directive overrides what dkms.conf says (STRIP=no keeps the debug info)',
    async () => {
      const out = await runDriver({ source: example('hello'), kernel: k61, options: { directives: ['STRIP=no'] } });
      expect(out.verdict, why(out)).toBe('built');
      expect(log(out)).toContain('DIRECTIVE: STRIP="no"');
      expect(await sectionNames(module(out, 'hello').data)).toContain('.debug_info');
    },
    T,
  );

  it(
    "modules are compressed as the kernel's own are: .ko.xz with CRC32 on 6.12, .ko on 6.1",
    async () => {
      const [on61, on612] = await Promise.all([k61, k612].map((kernel) => runDriver({ source: example('hello'), kernel })));
      expect(module(on61!, 'hello').suffix).toBe('.ko');
      const xz = module(on612!, 'hello');
      expect(xz.suffix).toBe('.ko.xz');
      expect([...xz.data.subarray(0, 6)]).toEqual([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
      expect(xz.data[7], 'the xz check type: 1 is CRC32 (the kernel refuses CRC64, 4)').toBe(0x01);
      expect(await modinfoField(xz.data, xz.suffix, 'vermagic')).toMatch(new RegExp(`^${k612.replace(/[.+]/g, '\\$&')} `));
    },
    T,
  );

  it(
    '/etc/dkms overrides are sourced after dkms.conf, most specific last; 3.2 also reads <module>--<kernel>.conf',
    async () => {
      const dkmsOverrides = (kernel: string) => [
        { name: 'hello.conf', text: 'STRIP[0]="no"\n' },
        // more specific, read later: wins
        { name: `hello-1.0.0-${kernel}.conf`, text: 'BUILD_EXCLUSIVE_KERNEL="^never$"\n' },
        { name: 'other.conf', text: 'exit 1\n' },
      ];
      const [d12, d13] = await Promise.all([k61, k13].map((kernel) => runDriver({ source: example('hello'), kernel, options: { dkmsOverrides: dkmsOverrides(kernel) } })));
      expect(d12!.verdict, why(d12!)).toBe('excluded');
      expect(log(d12!)).toContain('reading /etc/dkms/hello.conf');
      expect(log(d12!)).toContain(`reading /etc/dkms/hello-1.0.0-${k61}.conf`);
      expect(log(d12!)).not.toContain('other.conf');
      expect(d13!.verdict, why(d13!)).toBe('excluded');
      const only = await runDriver({ source: example('hello'), kernel: k61, options: { dkmsOverrides: [{ name: 'hello.conf', text: 'STRIP[0]="no"\n' }] } });
      expect(only.verdict, why(only)).toBe('built');
      expect(await sectionNames(module(only, 'hello').data)).toContain('.debug_info');
      const byKernel = { name: `hello--${k13}.conf`, text: 'BUILD_EXCLUSIVE_ARCH="^arm"\n' };
      const [k12run, k13run] = await Promise.all(
        [k61, k13].map((kernel) => runDriver({ source: example('hello'), kernel, options: { dkmsOverrides: [{ ...byKernel, name: `hello--${kernel}.conf` }] } })),
      );
      expect(k12run!.verdict, '3.0.10 reads no <module>--<kernel>.conf').toBe('built');
      expect(k13run!.verdict, why(k13run!)).toBe('excluded');
    },
    T,
  );

  it(
    "the kernel's .config goes into log/ next to make.log on 3.0.10 only (2.8.4 copies it only with --config, 3.2.2 never)",
    async () => {
      const [d11, d12, d13] = await Promise.all([k11, k61, k13].map((kernel) => runDriver({ source: example('hello'), kernel })));
      expect(d11!.verdict, why(d11!)).toBe('built');
      expect(d11!.kernelConfig).toBeUndefined();
      expect(d12!.kernelConfig?.toString()).toContain('CONFIG_MODULES=y');
      expect(d13!.verdict, why(d13!)).toBe('built');
      expect(d13!.kernelConfig).toBeUndefined();
    },
    T,
  );

  it(
    '--compress none|xz overrides the kernel: .ko on 6.12, .ko.xz on 6.1; zstd where the image lacks it is a clear error',
    async () => {
      const [none612, xz61, zstd61] = await Promise.all([
        runDriver({ source: example('hello'), kernel: k612, options: { compress: 'none' } }),
        runDriver({ source: example('hello'), kernel: k61, options: { compress: 'xz' } }),
        runDriver({ source: example('hello'), kernel: k61, options: { compress: 'zstd' } }),
      ]);
      expect(module(none612, 'hello').suffix).toBe('.ko');
      expect(module(xz61, 'hello').suffix).toBe('.ko.xz');
      expect(module(xz61, 'hello').data[7]).toBe(0x01);
      if (zstd61.verdict === 'built') {
        expect(module(zstd61, 'hello').suffix).toBe('.ko.zst');
      } else {
        expect(zstd61.reason).toBe('driver-error');
        expect(zstd61.message).toContain('compresses its modules with zstd, which this image lacks');
      }
    },
    T,
  );

  it(
    'a version that changes with the kernel: built as what `dkms add` registered (for the running kernel), with a warning',
    async () => {
      const source = path.join(packageRoot, 'test', 'fixtures', 'modules', 'version-by-kernel');
      const out = await runDriver({ source, kernel: k612 });
      expect(out.verdict, why(out)).toBe('built');
      expect(out.driver.packageVersion).toBe('1.0');
      expect(out.driver.warnings.join('\n')).toContain(`dkms.conf says verbykernel/2.0 for ${k612} but verbykernel/1.0 for \`dkms add\``);
    },
    T,
  );

  it(
    'two records of one module: one module as the last record says on 3.0.10 (with a warning), bad-conf on 3.2.2',
    async () => {
      const [d12, d13] = await Promise.all([k61, k13].map((kernel) => runDriver({ source: fixture('duplicate-module'), kernel })));
      expect(d12!.verdict, why(d12!)).toBe('built');
      expect(d12!.modules.map((m) => [m.destName, m.destLocation])).toEqual([['dl_duplicate_module', '/updates']]);
      expect(d12!.driver.warnings.join('\n')).toContain('DEST_MODULE_NAME[1] repeats dl_duplicate_module');
      expect(d13!.verdict, why(d13!)).toBe('failed');
      expect(d13!.reason).toBe('bad-conf');
      expect(d13!.message).toContain("Duplicate module 'dl_duplicate_module'");
    },
    T,
  );

  it(
    'CRLF line endings work on dkms 3.2 (2.8 and 3.0 fail them: dkms-release-verdicts.test.ts)',
    async () => {
      const out = await runDriver({ source: fixture('crlf'), kernel: k13 });
      expect(out.verdict, why(out)).toBe('built');
      expect(out.driver.packageName).toBe('dl_crlf');
      expect(out.driver.autoinstall).toBe('yes');
    },
    T,
  );

  it(
    'a dkms.conf that reads stdin gets end of file and builds',
    async () => {
      const out = await runDriver({ source: fixture('conf-reads-stdin'), kernel: k61 });
      expect(out.verdict, why(out)).toBe('built');
    },
    T,
  );

  it(
    'an unknown directive is a warning and the build goes on; deprecated ones warn on 3.x only',
    async () => {
      const unknown = await runDriver({ source: fixture('unknown-directive'), kernel: k61 });
      expect(unknown.verdict, why(unknown)).toBe('built');
      expect(unknown.driver.warnings.join('\n')).toContain('dkms.conf sets BUILT_MODULES_NAME, which dkms does not read');
      const [d11, d12] = await Promise.all([k11, k61].map((kernel) => runDriver({ source: fixture('deprecated'), kernel })));
      expect(d12!.verdict, why(d12!)).toBe('built');
      expect(d12!.driver.warnings).toEqual(
        expect.arrayContaining([expect.stringContaining('Deprecated feature: REMAKE_INITRD'), expect.stringContaining('Deprecated feature: MODULES_CONF')]),
      );
      expect(d11!.verdict, why(d11!)).toBe('built');
      expect(d11!.driver.warnings.join('\n')).not.toContain('Deprecated');
    },
    T,
  );
});

describe.concurrent('failure reasons', () => {
  const fails = async (name: string, reason: string, kernel = () => k61) => {
    const out = await runDriver({ source: fixture(name), kernel: kernel() });
    expect(out.verdict, why(out)).toBe('failed');
    expect(out.reason, why(out)).toBe(reason);
    return out;
  };

  it(
    'patch-missing: a PATCH that is not in patches/',
    async () => {
      expect((await fails('patch-missing', 'patch-missing')).message).toContain('Patch absent.patch as specified in dkms.conf cannot be found in patches/');
    },
    T,
  );
  it(
    'patch-missing: a PATCH that leaves patches/ with ..',
    async () => {
      expect((await fails('patch-escape', 'patch-missing')).message).toContain("contains '..' path component");
    },
    T,
  );
  it(
    "patch-failed: a PATCH that does not apply, with patch's own output",
    async () => {
      const out = await fails('patch-failed', 'patch-failed');
      expect(out.message).toContain('Application of patch stale.patch failed');
      expect(log(out)).toMatch(/Hunk #1 FAILED/);
    },
    T,
  );
  it(
    "patch-failed on 3.2.2: patch's output is in make.log",
    async () => {
      const out = await fails('patch-failed', 'patch-failed', () => k13);
      expect(out.makeLog?.toString()).toMatch(/Hunk #1 FAILED/);
    },
    T,
  );
  it(
    'missing-module: make succeeded but BUILT_MODULE_NAME is not there',
    async () => {
      expect((await fails('missing-module', 'missing-module')).message).toContain('dl_not_built.ko');
    },
    T,
  );
  it(
    'bad-conf in the build pass: valid for dkms add, broken once $module is set',
    async () => {
      const out = await fails('bad-conf-build', 'bad-conf');
      expect(out.driver.failedStage).toBe('build');
      expect(out.message).toContain("does not begin with '/kernel', '/updates', or '/extra'");
    },
    T,
  );
  it(
    'bad-conf: a dkms.conf that exits',
    async () => {
      const out = await fails('conf-exits', 'bad-conf');
      expect(out.driver.failedStage).toBe('add');
      expect(out.message).toContain('dkms.conf exited (status 3) while dkms sourced it');
    },
    T,
  );
  it(
    'bad-conf: a dkms.conf that never ends is stopped by its time limit',
    async () => {
      const started = Date.now();
      const out = await fails('conf-loops', 'bad-conf');
      expect(out.message).toContain('dkms.conf did not finish within 30 s');
      expect(Date.now() - started).toBeLessThan(120_000);
    },
    T,
  );
  it(
    'bad-conf: BUILT_MODULE_LOCATION or DEST_MODULE_LOCATION that leaves the tree',
    async () => {
      expect((await fails('escapes-built-location', 'bad-conf')).message).toMatch(/BUILT_MODULE_LOCATION\[0\]/);
      expect((await fails('escapes-dest-location', 'bad-conf')).message).toMatch(/DEST_MODULE_LOCATION\[0\]/);
    },
    T,
  );
  it(
    'missing-headers: a kernel whose headers the image does not hold',
    async () => {
      const out = await runDriver({ source: example('hello'), kernel: '6.1.0-99-amd64', imageOf: k61 });
      expect(out.verdict, why(out)).toBe('failed');
      expect(out.reason).toBe('missing-headers');
      expect(out.message).toContain('no kernel headers at /lib/modules/6.1.0-99-amd64/build');
    },
    T,
  );
});
