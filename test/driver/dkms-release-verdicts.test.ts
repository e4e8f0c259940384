import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';
import type { ContainerBuildOutput } from '../../src/worker/run-in-container.js';
import { defaultKernels } from '../helpers/kfarm-cli.js';
import { releaseKernel, runDriver } from '../helpers/run-driver.js';

/**
 * Where the releases' dkms give different verdicts, driver.sh gives each kernel its own
 * release's (docs/dkms-releases.md): bullseye's 2.8.4, bookworm's 3.0.10, trixie's 3.2.2, each
 * read in its source and measured with the real dkms (`npm run conformance`).
 */
const fixture = (name: string) => path.join(packageRoot, 'test', 'fixtures', 'dkms-language', name);

let k11 = '';
let k12 = '';
let k13 = '';

beforeAll(async () => {
  k12 =
    (await defaultKernels())
      .split(',')
      .filter((k) => k.startsWith('6.1.'))
      .sort()
      .at(-1) ?? '';
  expect(k12, 'no debian-12 6.1 kernel held: run scripts/setup.sh').not.toBe('');
  k11 = await releaseKernel('debian-11');
  k13 = await releaseKernel('debian-13');
}, 1_500_000);

const T = 600_000;
const why = (out: ContainerBuildOutput) => `${out.verdict} ${out.reason ?? ''}: ${out.message ?? ''}\n${out.log.toString('utf8').slice(-3000)}`;
const onEach = (source: string) => Promise.all([k11, k12, k13].map((kernel) => runDriver({ source: fixture(source), kernel })));

describe('verdicts that differ by release', () => {
  it(
    'CRLF dkms.conf: 2.8.4 and 3.0.10 fail it (bad-conf naming the line endings), 3.2.2 builds it',
    async () => {
      const [d11, d12, d13] = await onEach('crlf');
      for (const [out, dialect] of [
        [d11!, '2.8'],
        [d12!, '3.0'],
      ] as const) {
        expect(out.verdict, why(out)).toBe('failed');
        expect(out.reason).toBe('bad-conf');
        expect(out.message).toContain(`dkms.conf has CRLF (Windows) line endings: dkms ${dialect} keeps the carriage return`);
        expect(out.message).toContain('PACKAGE_NAME[0]');
        expect(out.message).toMatch(/convert dkms\.conf to LF line endings \(dos2unix dkms\.conf/);
        // dkms add works on these releases: the name is known, and the failure is this kernel's, not the module's
        expect(out.driver.packageName).toBe('dl_crlf');
        expect(out.driver.failedStage).toBe('build');
      }
      expect(d13!.verdict, why(d13!)).toBe('built');
      expect(d13!.driver.packageName).toBe('dl_crlf');
      expect(d13!.driver.autoinstall).toBe('yes');
    },
    T,
  );

  it(
    'DEST_MODULE_LOCATION="/updates-dkms-test": every release accepts it (it starts with /updates) and installs to /updates/dkms',
    async () => {
      for (const out of await onEach('dest-location-prefix')) {
        expect(out.verdict, why(out)).toBe('built');
        expect(out.modules.map((m) => [m.destName, m.destLocation, m.installLocation])).toEqual([['dl_dest_location_prefix', '/updates-dkms-test', '/updates/dkms']]);
      }
    },
    T,
  );

  it(
    'BUILD_DEPENDS naming a module not built for the kernel: 2.8.4 and 3.0.10 build it with a warning, 3.2.2 fails it (missing-dependency)',
    async () => {
      const [d11, d12, d13] = await onEach('build-depends-outside');
      for (const [out, dialect] of [
        [d11!, '2.8'],
        [d12!, '3.0'],
      ] as const) {
        expect(out.verdict, why(out)).toBe('built');
        expect(out.driver.warnings.filter((w) => w.startsWith('BUILD_DEPENDS names dl_not_in_this_run, which was not built for'))).toHaveLength(1);
        expect(out.driver.warnings.join('\n')).toContain(`dkms ${dialect} builds the module without it`);
      }
      expect(d13!.verdict, why(d13!)).toBe('failed');
      expect(d13!.reason).toBe('missing-dependency');
      expect(d13!.message).toContain(`Aborting build of module dl_build_depends_outside/1.0 for kernel ${k13} (x86_64) due to missing BUILD_DEPENDS: dl_not_in_this_run`);
      expect(d13!.driver.makeInvocation, 'no make on 3.2.2').toBeUndefined();
    },
    T,
  );

  it(
    "BUILD_DEPENDS missing where the module's own BUILD_EXCLUSIVE_KERNEL excludes the kernel: excluded on every release",
    async () => {
      for (const out of await onEach('build-depends-excluded')) {
        expect(out.verdict, why(out)).toBe('excluded');
        expect(out.reason).toBe('build-exclusive');
      }
    },
    T,
  );
});
