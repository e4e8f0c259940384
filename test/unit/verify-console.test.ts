import { describe, expect, it } from 'vitest';
import { parseConsole } from '../../src/verify/console-parse.js';

// Trimmed consoles captured from real boots (`kfarm verify`, TCG, Debian 12 kernels).
const N = '969b39e54fefa9bd';
const head = [
  'kfarm-verify: booting: qemu-system-x86_64 -machine q35 -append console=ttyS0 panic=-1 oops=panic loglevel=7 printk.time=1  -accel tcg',
  'SeaBIOS (version 1.16.2-debian-1.16.2-1)',
  '[    0.000000] Linux version 6.1.0-57-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3',
  '[    1.777000] Run /init as init process',
  `@@kfarm-${N} boot 1.78`,
];
const console_ = (...lines: string[]) => [...head, ...lines].join('\r\n');

describe('parseConsole', () => {
  it('a module that loaded: loaded, boot time from init, load time from the markers', () => {
    const text = console_(
      `@@kfarm-${N} insmod updates/dkms/hello.ko 1.95`,
      '[    1.995291] hello: loading out-of-tree module taints kernel.',
      '[    1.996773] hello: module verification failed: signature and/or required key missing - tainting kernel',
      '[    1.999991] hello: hello from kfarm',
      `@@kfarm-${N} result updates/dkms/hello.ko 0 1.97`,
      `@@kfarm-${N} done 1.98`,
      '[    2.027575] reboot: Power down',
    );
    const out = parseConsole(text, N, 'ran');
    expect(out).toMatchObject({ verdict: 'loaded', bootMs: 1780, loadMs: 30 });
    expect(out.reason).toBeUndefined();
    expect(out.results).toEqual([{ module: 'updates/dkms/hello.ko', status: 0 }]);
  });

  it("an unknown symbol: load-failed, unknown-symbol, the kernel line without its timestamp (not the script's oops=panic)", () => {
    const text = console_(
      `@@kfarm-${N} insmod updates/dkms/kfarm_missing.ko 1.80`,
      '[    1.859680] kfarm_missing: Unknown symbol kfarm_no_such_symbol (err -2)',
      "insmod: can't insert '/lib/modules/6.1.0-57-amd64/updates/dkms/kfarm_missing.ko': unknown symbol in module, or unknown parameter",
      `@@kfarm-${N} result updates/dkms/kfarm_missing.ko 2 1.84`,
      `@@kfarm-${N} done 1.85`,
    );
    expect(parseConsole(text, N, 'ran')).toMatchObject({
      verdict: 'load-failed',
      reason: 'unknown-symbol',
      firstError: 'kfarm_missing: Unknown symbol kfarm_no_such_symbol (err -2)',
    });
  });

  it("a modversions mismatch printed in the middle of insmod's line: version-magic with the kernel's line", () => {
    const text = console_(
      `@@kfarm-${N} insmod updates/dkms/hello.ko 2.25`,
      "insmod: can't insert '/lib/modules/6.12.117+deb12-rt-amd64/updates/dkms/hello.ko': invalid module format[    2.261156] hello: disagrees about version of symbol module_layout",
      `@@kfarm-${N} result updates/dkms/hello.ko 8 2.30`,
      `@@kfarm-${N} done 2.31`,
    );
    expect(parseConsole(text, N, 'ran')).toMatchObject({ verdict: 'load-failed', reason: 'version-magic', firstError: 'hello: disagrees about version of symbol module_layout' });
  });

  it('a version magic string mismatch is version-magic', () => {
    const text = console_(
      `@@kfarm-${N} insmod a.ko 1.0`,
      "[    1.000001] a: version magic '6.1.0-57-amd64 SMP preempt mod_unload modversions ' should be '6.1.0-57-amd64 SMP mod_unload modversions '",
      `@@kfarm-${N} result a.ko 8 1.1`,
      `@@kfarm-${N} done 1.1`,
    );
    expect(parseConsole(text, N, 'ran')).toMatchObject({ verdict: 'load-failed', reason: 'version-magic' });
  });

  it('sig_enforce and an unsigned module: unsigned-rejected', () => {
    const text = console_(
      `@@kfarm-${N} insmod updates/dkms/hello.ko 1.70`,
      '[    1.720000] Loading of unsigned module is rejected',
      "insmod: can't insert '/lib/modules/6.1.0-57-amd64/updates/dkms/hello.ko': Key was rejected by service",
      `@@kfarm-${N} result updates/dkms/hello.ko 1 1.72`,
      `@@kfarm-${N} done 1.72`,
    );
    expect(parseConsole(text, N, 'ran')).toMatchObject({ verdict: 'load-failed', reason: 'unsigned-rejected', firstError: 'Loading of unsigned module is rejected' });
  });

  it('a guest that never reached init: not-verified, boot-failed or timeout', () => {
    const text = ['SeaBIOS (version 1.16.2-debian-1.16.2-1)', 'Probing EDD (edd=off to disable)... ok', 'qemu-system-x86_64: terminating on signal 15 from pid 43 (timeout)'].join(
      '\n',
    );
    expect(parseConsole(text, N, 'timeout')).toMatchObject({ verdict: 'not-verified', reason: 'timeout' });
    expect(parseConsole(text, N, 'ran')).toMatchObject({ verdict: 'not-verified', reason: 'boot-failed' });
  });

  it('a module that crashes the guest during insmod: load-failed, crashed, with the panic line', () => {
    const text = console_(
      `@@kfarm-${N} insmod updates/dkms/bad.ko 1.9`,
      '[    1.950000] BUG: kernel NULL pointer dereference, address: 0000000000000000',
      '[    1.960000] Kernel panic - not syncing: Fatal exception',
    );
    expect(parseConsole(text, N, 'ran')).toMatchObject({
      verdict: 'load-failed',
      reason: 'crashed',
      firstError: 'BUG: kernel NULL pointer dereference, address: 0000000000000000',
    });
  });

  it("markers without this boot's nonce are the guest's text, not init's: a module cannot forge a load", () => {
    const text = [
      ...head.slice(0, 4),
      '@@kfarm-0000000000000000 boot 1.0',
      '@@kfarm-0000000000000000 insmod x.ko 1.0',
      '@@kfarm-0000000000000000 result x.ko 0 1.0',
      '@@kfarm-0000000000000000 done 1.0',
    ].join('\n');
    expect(parseConsole(text, N, 'ran')).toMatchObject({ verdict: 'not-verified', reason: 'boot-failed' });
  });

  it('no kernel image in the package: not-verified without reading the console', () => {
    expect(parseConsole('', N, 'no-kernel-image')).toEqual({ verdict: 'not-verified', reason: 'no-kernel-image', results: [] });
  });

  it('escape sequences in a refusal line are dropped', () => {
    const text = console_(
      `@@kfarm-${N} insmod a.ko 1.0`,
      '[    1.000001] a: Unknown symbol \u001b[31mevil\u001b[0m (err -2)',
      `@@kfarm-${N} result a.ko 2 1.1`,
      `@@kfarm-${N} done 1.1`,
    );
    expect(parseConsole(text, N, 'ran').firstError).toBe('a: Unknown symbol evil (err -2)');
  });
});
