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
    expect(r.modules).toEqual([{ index: 0, builtName: 'hello', builtLocation: '', destName: 'hello', destLocation: '/extra', installLocation: '/updates/dkms', strip: true }]);
    expect(r.makeInvocation).toContain('KERNELRELEASE=6.1.0-56-amd64');
    expect(r.makeExit).toBe(0);
  });

  it('reads an exclusion with its reason', () => {
    const r = parseDriverResult(
      'package_name\tx\nexclusion\tBUILD_EXCLUSIVE_KERNEL="^6\\.1\\." does not match 6.12.1\nverdict\texcluded\nreason\tbuild-exclusive\nmessage\tBUILD_EXCLUSIVE_KERNEL does not match\n',
    );
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

// What driver.sh reports for a dkms.conf with hostile names: the same facts as BUILT, with
// one value replaced (the driver flattens a newline to a space, newer drivers control characters to `?`).
const withFact = (key: string, from: string, to: string) =>
  BUILT.split('\n')
    .map((l) => (l.startsWith(`${key}\t`) ? l.replace(from, to) : l))
    .join('\n');

describe('parseDriverResult refuses names that are not names', () => {
  it.each([
    ['PACKAGE_NAME', 'package_name', 'hello', '../../../x'],
    ['PACKAGE_NAME', 'package_name', 'hello', 'a/b'],
    ['PACKAGE_NAME', 'package_name', 'hello', 'two words'],
    ['PACKAGE_NAME', 'package_name', 'hello', 'esc\u001b[31mred'],
    ['PACKAGE_NAME', 'package_name', 'hello', '.hidden'],
    ['PACKAGE_VERSION', 'package_version', '1.0.0', '1.0/../../x'],
    ['PACKAGE_VERSION', 'package_version', '1.0.0', '1.0\u0007'],
  ])('%s %j: failed bad-conf at the add pass, no name kept', (directive, key, from, bad) => {
    const r = parseDriverResult(withFact(key, from, bad));
    expect(r).toMatchObject({ verdict: 'failed', reason: 'bad-conf', failedStage: 'add', packageName: undefined, packageVersion: undefined, modules: [] });
    expect(r.message).toContain(`${directive} ${JSON.stringify(bad)} is not a usable name`);
    // eslint-disable-next-line no-control-regex -- the message must be free of control characters: that is what is checked
    expect(r.message).not.toMatch(/[\u0000-\u001f\u007f]/);
  });

  it.each([
    ['BUILT_MODULE_NAME[0]', 'module\t0\t../evil\t\thello\t/extra\t/updates/dkms\tyes'],
    ['DEST_MODULE_NAME[0]', 'module\t0\thello\t\t../../../../tmp/evil\t/extra\t/updates/dkms\tyes'],
    ['DEST_MODULE_NAME[0]', 'module\t0\thello\t\tsub/dir\t/extra\t/updates/dkms\tyes'],
    ['DEST_MODULE_NAME[0]', 'module\t0\thello\t\tbell\u0007\t/extra\t/updates/dkms\tyes'],
    ['BUILT_MODULE_LOCATION[0]', 'module\t0\thello\t../../\thello\t/extra\t/updates/dkms\tyes'],
    ['DEST_MODULE_LOCATION[0]', 'module\t0\thello\t\thello\t/kernel/../../../etc\t/updates/dkms\tyes'],
  ])('%s bad in a built result: failed bad-conf for this kernel, no module kept', (directive, moduleLine) => {
    const text = BUILT.split('\n')
      .map((l) => (l.startsWith('module\t') ? moduleLine : l))
      .join('\n');
    const r = parseDriverResult(text);
    expect(r).toMatchObject({ verdict: 'failed', reason: 'bad-conf', failedStage: 'build', packageName: 'hello', packageVersion: '1.0.0', modules: [] });
    expect(r.message).toContain(`${directive} "`);
  });

  it('keeps locations as dkms.conf writes them: a leading /, ./ and a trailing /', () => {
    const text = BUILT.replace('module\t0\thello\t\thello\t/extra\t', 'module\t0\thello\t./src/\thello\t/kernel/drivers/misc/\t');
    const r = parseDriverResult(text);
    expect(r.verdict).toBe('built');
    expect(r.modules[0]).toMatchObject({ builtLocation: './src/', destLocation: '/kernel/drivers/misc/' });
  });

  it("keeps the driver's own bad-conf message when dkms.conf already failed its checks", () => {
    const r = parseDriverResult(
      "package_name\thello\npackage_version\t\nmodule\t0\t\t\t\t\t\tyes\nfailed_stage\tadd\nverdict\tfailed\nreason\tbad-conf\nmessage\tNo 'PACKAGE_VERSION' directive specified.\n",
    );
    expect(r).toMatchObject({
      verdict: 'failed',
      reason: 'bad-conf',
      failedStage: 'add',
      message: "No 'PACKAGE_VERSION' directive specified.",
      packageName: 'hello',
      packageVersion: undefined,
      modules: [],
    });
  });

  it('a Makefile that rewrote the result to claim success with a hostile name still fails', () => {
    const r = parseDriverResult('package_name\t../../x\npackage_version\t1\nmodule\t0\tm\t\tm\t/extra\t/updates/dkms\tyes\nverdict\tbuilt\n');
    expect(r.verdict).toBe('failed');
    expect(r.packageName).toBeUndefined();
  });

  it('cleans messages and warnings of escape sequences and caps them', () => {
    const r = parseDriverResult(
      `warning\t\u001b]0;title\u0007bash \u001b[1msyntax\u001b[0m error\nmessage\t${'m'.repeat(10_000)}\u001b[2J\nverdict\tfailed\nreason\tmake-failed\n`,
    );
    expect(r.warnings).toEqual(['bash syntax error']);
    expect(r.message?.length).toBe(2000);
    expect(r.message).not.toContain('\u001b');
  });

  it('keeps at most 20 warnings', () => {
    const r = parseDriverResult(`${'warning\tw\n'.repeat(1000)}verdict\tbuilt\n`);
    expect(r.warnings).toHaveLength(20);
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

  it("falls back to make's *** line, then to the last line", () => {
    expect(firstErrorLine("foo\nmake: *** No rule to make target 'modules'.  Stop.\nbar")).toBe("make: *** No rule to make target 'modules'.  Stop.");
    expect(firstErrorLine('one\ntwo\n\n')).toBe('two');
    expect(firstErrorLine('')).toBeUndefined();
  });

  it('names an operating-system error before a trailing summary line', () => {
    const log = "writing to ./fill\ndd: error writing './fill': No space left on device\n256+0 records in\n268414976 bytes (268 MB, 256 MiB) copied, 0.12 s, 2.1 GB/s\n";
    expect(firstErrorLine(log)).toBe("dd: error writing './fill': No space left on device");
  });
});
