import { describe, expect, it } from 'vitest';
import { parseDriverResult } from '../../src/dkms/driver-result.js';
import { firstErrorLine } from '../../src/dkms/make-log.js';

// Recorded from driver.sh building examples/hello for 6.1.0-56-amd64.
const BUILT = [
  'package_name\thello',
  'package_version\t1.0.0',
  'module\t0\thello\t\thello\t/extra\t/updates/dkms\tyes',
  'make_command\tmake -C /lib/modules/6.1.0-56-amd64/build M=/var/lib/dkms/hello/1.0.0/build modules',
  'autoinstall\tyes',
  'make_invocation\tmake -j2 KERNELRELEASE=6.1.0-56-amd64 -C /lib/modules/6.1.0-56-amd64/build M=/var/lib/dkms/hello/1.0.0/build modules',
  'make_exit\t0',
  'verdict\tbuilt',
  '',
].join('\n');

describe('parseDriverResult', () => {
  it('reads a successful build', () => {
    const r = parseDriverResult(BUILT);
    expect(r.verdict).toBe('built');
    expect(r.packageName).toBe('hello');
    expect(r.packageVersion).toBe('1.0.0');
    expect(r.modules).toEqual([
      { index: 0, builtName: 'hello', builtLocation: '', destName: 'hello', destLocation: '/extra', installLocation: '/updates/dkms', strip: true },
    ]);
    expect(r.makeInvocation).toContain('KERNELRELEASE=6.1.0-56-amd64');
    expect(r.makeExit).toBe(0);
  });

  it('reads an exclusion with its reason', () => {
    const r = parseDriverResult('package_name\tx\nexclusion\tBUILD_EXCLUSIVE_KERNEL="^6\\.1\\." does not match 6.12.1\nverdict\texcluded\nreason\tbuild-exclusive\nmessage\tBUILD_EXCLUSIVE_KERNEL does not match\n');
    expect(r.verdict).toBe('excluded');
    expect(r.reason).toBe('build-exclusive');
    expect(r.exclusion).toContain('6.12.1');
  });

  it('maps an unknown reason to driver-error and ignores unknown facts', () => {
    const r = parseDriverResult('future_fact\t1\nverdict\tfailed\nreason\tsomething-new\n');
    expect(r.verdict).toBe('failed');
    expect(r.reason).toBe('driver-error');
  });

  it('collects warnings', () => {
    const r = parseDriverResult('warning\tdkms.conf has a bash syntax error: line 7\nverdict\tbuilt\n');
    expect(r.warnings).toEqual(['dkms.conf has a bash syntax error: line 7']);
    expect(parseDriverResult('verdict\tbuilt\n').warnings).toEqual([]);
  });

  it('tells a dkms.conf the module cannot be added with from one this kernel cannot build with', () => {
    expect(parseDriverResult('failed_stage\tadd\nverdict\tfailed\nreason\tbad-conf\n').failedStage).toBe('add');
    expect(parseDriverResult('failed_stage\tbuild\nverdict\tfailed\n').failedStage).toBe('build');
    expect(parseDriverResult('failed_stage\tlater\nverdict\tfailed\n').failedStage).toBeUndefined();
  });

  it('has no verdict for an empty file (the driver was killed)', () => {
    expect(parseDriverResult('').verdict).toBeUndefined();
  });
});

describe('firstErrorLine', () => {
  it('prefers the compiler error over make noise', () => {
    const log = [
      'DKMS make.log for fails612-0.1 for kernel 6.12.117+deb12-amd64 (x86_64)',
      "make: Entering directory '/usr/src/linux-headers-6.12.117+deb12-amd64'",
      '  CC [M]  /var/lib/dkms/fails612/0.1/build/fails612.o',
      '/var/lib/dkms/fails612/0.1/build/fails612.c:5:2: error: #error "fails612 does not support kernel 6.12"',
      '    5 | #error "fails612 does not support kernel 6.12"',
      'make[2]: *** [scripts/Makefile.build:229: /var/lib/dkms/fails612/0.1/build/fails612.o] Error 1',
    ].join('\n');
    expect(firstErrorLine(log)).toBe('/var/lib/dkms/fails612/0.1/build/fails612.c:5:2: error: #error "fails612 does not support kernel 6.12"');
  });

  it('falls back to make\'s *** line, then to the last line', () => {
    expect(firstErrorLine('foo\nmake: *** No rule to make target \'modules\'.  Stop.\nbar')).toBe("make: *** No rule to make target 'modules'.  Stop.");
    expect(firstErrorLine('one\ntwo\n\n')).toBe('two');
    expect(firstErrorLine('')).toBeUndefined();
  });

  it('names an operating-system error before a trailing summary line', () => {
    const log = "writing to ./fill\ndd: error writing './fill': No space left on device\n256+0 records in\n268414976 bytes (268 MB, 256 MiB) copied, 0.12 s, 2.1 GB/s\n";
    expect(firstErrorLine(log)).toBe("dd: error writing './fill': No space left on device");
  });
});
