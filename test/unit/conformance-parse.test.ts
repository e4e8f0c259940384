import { describe, expect, it } from 'vitest';
import { dkmsSourceDirOf } from '../../bench/conformance/corpus.js';
import { kfarmSides } from '../../bench/conformance/kfarm-report.js';
import { parseOracleOutput, verdictOfExit } from '../../bench/conformance/oracle-output.js';
import { parseDownloadOutput } from '../../bench/conformance/package-output.js';

describe('conformance: the oracle output', () => {
  const output = [
    '@@dkms 3.0.10-8+deb12u1',
    'noise that dkms printed',
    '@@module acpi-call-dkms acpi-call 1.2.2',
    '@@add acpi-call-dkms 0',
    '@@build acpi-call-dkms 6.1.0-57-amd64 0',
    '@@built acpi-call-dkms 6.1.0-57-amd64 acpi_call.ko',
    '@@built acpi-call-dkms 6.1.0-57-amd64 Module.symvers',
    '@@install acpi-call-dkms 6.1.0-57-amd64 0',
    '@@dest acpi-call-dkms 6.1.0-57-amd64 updates/dkms/acpi_call.ko',
    '@@build acpi-call-dkms 6.12.117+deb12-amd64 10',
    '@@log make.log: /bin/sh: 1: pahole: not found',
    '@@build acpi-call-dkms 7.0-amd64 77',
    '@@module broken unknown unknown',
    '@@add broken 3',
    '@@log Error! Could not find module source directory.',
    '@@end',
  ].join('\n');

  it('reads the dkms version, each module and each kernel cell (module files only: not the Module.symvers 3.2.x keeps)', () => {
    const run = parseOracleOutput(output);
    expect(run.complete).toBe(true);
    expect(run.dkmsVersion).toBe('3.0.10-8+deb12u1');
    const [acpi, broken] = run.modules;
    expect(acpi).toMatchObject({ id: 'acpi-call-dkms', name: 'acpi-call', version: '1.2.2', addExit: 0 });
    expect(acpi?.cells).toEqual([
      { kernel: '6.1.0-57-amd64', buildExit: 0, verdict: 'built', files: ['acpi_call.ko'], installExit: 0, destinations: ['updates/dkms/acpi_call.ko'], log: [] },
      { kernel: '6.12.117+deb12-amd64', buildExit: 10, verdict: 'failed', files: [], installExit: undefined, destinations: [], log: ['make.log: /bin/sh: 1: pahole: not found'] },
      { kernel: '7.0-amd64', buildExit: 77, verdict: 'excluded', files: [], installExit: undefined, destinations: [], log: [] },
    ]);
    expect(broken).toMatchObject({ addExit: 3, cells: [], log: ['Error! Could not find module source directory.'] });
  });

  it('an output without the end marker is incomplete', () => {
    expect(parseOracleOutput('@@dkms 2.8.4-3\n@@module a a 1\n').complete).toBe(false);
  });

  it('drops what a container could smuggle in: paths leaving the tree, odd file names', () => {
    const run = parseOracleOutput(
      [
        '@@module m m 1',
        '@@add m 0',
        '@@build m k 0',
        '@@built m k ../../etc/passwd',
        '@@built m k m.ko',
        '@@dest m k ../escape.ko',
        '@@dest m k /abs.ko',
        '@@dest m k updates/dkms/m.ko',
        '@@end',
      ].join('\n'),
    );
    expect(run.modules[0]?.cells[0]).toMatchObject({ files: ['m.ko'], destinations: ['updates/dkms/m.ko'] });
  });

  it('exit 0 is built, 77 excluded, any other failed', () => {
    expect([0, 77, 1, 10, -1, 9].map((c) => verdictOfExit(c, '3.0.10-8'))).toEqual(['built', 'excluded', 'failed', 'failed', 'failed', 'failed']);
    // dkms 2.8's prepare_build said BUILD_EXCLUSIVE with `die 9`
    expect([0, 9, 77].map((c) => verdictOfExit(c, '2.8.4-3'))).toEqual(['built', 'excluded', 'failed']);
  });
});

describe('conformance: the download helper and the .deb contents', () => {
  it('decodes each .deb and lists the missing packages', () => {
    const data = Buffer.from('!<arch>\nfake');
    const out = parseDownloadOutput(['@@missing vpoll-dkms', `@@deb acpi-call-dkms acpi-call-dkms_1.2.2-2_all.deb`, data.toString('base64'), '@@deb-end', '@@end'].join('\n'));
    expect(out.missing).toEqual(['vpoll-dkms']);
    expect(out.debs).toEqual([{ package: 'acpi-call-dkms', file: 'acpi-call-dkms_1.2.2-2_all.deb', data }]);
    expect(out.complete).toBe(true);
  });

  it('a .deb cut short counts as failed, not as a package', () => {
    const out = parseDownloadOutput('@@deb a-dkms a-dkms_1_all.deb\nQUJD\n');
    expect(out.debs).toEqual([]);
    expect(out.failed).toEqual(['a-dkms']);
    expect(out.complete).toBe(false);
  });

  it('finds the one /usr/src/<m>-<v>/dkms.conf of a package', () => {
    expect(dkmsSourceDirOf(['./usr/src/acpi-call-1.2.2/dkms.conf', './usr/src/acpi-call-1.2.2/acpi_call.c', './usr/share/doc/x'])).toBe('acpi-call-1.2.2');
    expect(dkmsSourceDirOf(['./usr/share/doc/x'])).toBeUndefined();
    expect(dkmsSourceDirOf(['./usr/src/a-1/dkms.conf', './usr/src/b-1/dkms.conf'])).toBeUndefined();
  });
});

describe("conformance: kfarm's report.json", () => {
  it('gives per kernel the verdict, file names and destinations relative to /lib/modules/<k>', () => {
    const report = {
      kernels: [
        { kernel: '6.12.117+deb12-amd64', verdict: 'built', modules: [{ file: 'acpi_call.ko.xz', destination: '/lib/modules/6.12.117+deb12-amd64/updates/dkms/acpi_call.ko.xz' }] },
        { kernel: '6.1.0-57-amd64', verdict: 'failed', reason: 'compile-error', message: 'make failed', modules: [] },
      ],
    };
    const sides = kfarmSides(JSON.stringify(report));
    expect(sides?.get('6.12.117+deb12-amd64')).toEqual({ verdict: 'built', files: ['acpi_call.ko.xz'], destinations: ['updates/dkms/acpi_call.ko.xz'], detail: '' });
    expect(sides?.get('6.1.0-57-amd64')).toEqual({ verdict: 'failed', files: [], destinations: [], detail: 'compile-error: make failed' });
  });

  it('a file that is not such a report gives nothing', () => {
    expect(kfarmSides('{"kernels": [{"kernel": "k"}]}')).toBeUndefined();
    expect(kfarmSides('not json')).toBeUndefined();
  });
});
