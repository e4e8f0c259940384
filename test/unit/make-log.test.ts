import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { identityFromLog } from '../../src/dkms/driver-result.js';
import { failureCause, firstErrorLine } from '../../src/dkms/make-log.js';
import { packageRoot } from '../../src/paths.js';

/** A log `kfarm build` wrote for a fixture module (test/fixtures/make-logs/README.md says how). */
const captured = (name: string) => readFileSync(path.join(packageRoot, 'test', 'fixtures', 'make-logs', `${name}.log`), 'utf8');

describe('the cause of a failed build, on logs of real builds', () => {
  it("a Makefile's $(error ...): its own line, not make's Error 2 summary", () => {
    const log = captured('make-error');
    expect(firstErrorLine(log)).toBe('/var/lib/dkms/makeerror/0.1/build/Makefile:3: *** deliberate failure.  Stop.');
    expect(failureCause('make-failed', log, 'Bad return status for module build on kernel: 6.1.0-57-amd64 (x86_64)')).toBe(
      '/var/lib/dkms/makeerror/0.1/build/Makefile:3: *** deliberate failure.  Stop.',
    );
  });

  it('a compile error: the compiler line, before the three make summaries', () => {
    expect(firstErrorLine(captured('fails-on-612'))).toBe('/var/lib/dkms/fails612/0.1/build/fails612.c:5:2: error: #error "fails612 does not support kernel 6.12"');
  });

  it("a missing source: make's No rule line, not Waiting for unfinished jobs, Error 2 or the supervisor's own bash", () => {
    expect(firstErrorLine(captured('no-rule'))).toBe(
      "make[1]: *** No rule to make target '/var/lib/dkms/norule/0.1/build/absent.o', needed by '/var/lib/dkms/norule/0.1/build/norule.o'.  Stop.",
    );
  });

  it("a MAKE command that does not exist: said as the command, without the driver's path and line", () => {
    expect(firstErrorLine(captured('no-such-tool'))).toBe('kfarm-no-such-tool: command not found');
  });

  it("a module make did not build: the driver's message, not make leaving its directory", () => {
    const message = 'Build of missing.ko failed for: 6.1.0-57-amd64 (x86_64): make succeeded but the module is not there; check BUILT_MODULE_NAME and BUILT_MODULE_LOCATION';
    const log = captured('missing-module');
    expect(failureCause('missing-module', log, message)).toBe(message);
    // without a message, the last line that says something: never make's chatter
    expect(firstErrorLine(log)).toBe('Skipping BTF generation for /var/lib/dkms/missing/0.1/build/other.ko due to unavailability of vmlinux');
  });

  it("a kill by the memory limit: the memory limit, and never a line of kfarm's driver", () => {
    const log = captured('eats-memory');
    const message = 'a process of the build was killed by the 256 MiB memory limit (raise --memory)';
    expect(failureCause('killed', log, message)).toBe(message);
    expect(firstErrorLine(log)).toBe('tail /dev/zero: Killed');
  });

  it("a BUILD_DEPENDS module not built (dkms 3.2): the driver's message naming it, not what evaluating dkms.conf printed", () => {
    expect(failureCause('missing-dependency', 'loading helpers\n[kfarm] building: make\n', 'dep is not built for this kernel')).toBe('dep is not built for this kernel');
  });

  it('a timeout: the timeout, not the last fork retry', () => {
    expect(failureCause('timeout', captured('forkbomb'), 'timeout after 10 s')).toBe('timeout after 10 s');
    expect(failureCause('timeout', captured('hangs'), 'timeout after 8 s')).toBe('timeout after 8 s');
  });

  it("a full disk's tool error and a make failure without a message still come from the log", () => {
    expect(failureCause('disk-full', "dd: error writing './fill': No space left on device\n1+0 records in\n", 'the build tree ran out of space')).toBe(
      "dd: error writing './fill': No space left on device",
    );
    expect(failureCause('make-failed', '[kfarm] building: false\n', 'Bad return status')).toBe('Bad return status');
  });
});

describe('a hostile log', () => {
  it('costs its length: 200,000-character lines that nearly match are read in well under a second', () => {
    const n = 200_000;
    const lines = [
      'a:' + '1'.repeat(n),
      'make' + '/make'.repeat(n / 5),
      `make: *** [${'['.repeat(n)}`,
      `/kfarm/driver.sh: line 1: 1 K${'  a'.repeat(n / 3)}`,
      `[kfarm] building: ${'/var/lib/dkms/a/b/'.repeat(n / 18)}`,
    ];
    const started = performance.now();
    for (const line of lines) {
      firstErrorLine(line);
      identityFromLog(line);
    }
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe('who the module is, from the log of a build cut short', () => {
  it('reads the name and version from the build dir on the clean line (timeouts of real builds)', () => {
    expect(identityFromLog(captured('hangs'))).toEqual({ packageName: 'hangs', packageVersion: '0.0.1' });
    expect(identityFromLog(captured('forkbomb'))).toEqual({ packageName: 'forkbomb', packageVersion: '0.0.1' });
  });

  it("prefers the driver's own line when it comes first, and takes only usable names", () => {
    expect(identityFromLog('[kfarm] module hello/1.2~rc1 (as dkms add registered it)\n[kfarm] building: make M=/var/lib/dkms/other/9/build\n')).toEqual({
      packageName: 'hello',
      packageVersion: '1.2~rc1',
    });
    expect(identityFromLog('[kfarm] building: make M=/var/lib/dkms/-x/1/build\n')).toBeUndefined();
    expect(identityFromLog('[kfarm] building: custom-build.sh\n')).toBeUndefined();
    // the module's own output naming a build dir is not the driver saying so
    expect(identityFromLog('make -C /var/lib/dkms/evil/6/build\n')).toBeUndefined();
  });
});
