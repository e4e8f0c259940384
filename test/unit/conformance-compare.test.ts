import { describe, expect, it } from 'vitest';
import { agreement, judge, relativeDestination, type Side } from '../../bench/conformance/compare.js';

const side = (verdict: Side['verdict'], files: string[] = [], destinations: string[] = []): Side => ({ verdict, files, destinations, detail: '' });

describe('conformance: one cell judged', () => {
  it('agrees when verdict, files and destinations are equal, whatever their order', () => {
    const c = judge({
      module: 'm',
      kernel: 'k',
      dkms: side('built', ['b.ko', 'a.ko'], ['updates/dkms/b.ko', 'updates/dkms/a.ko']),
      kfarm: side('built', ['a.ko', 'b.ko'], ['updates/dkms/a.ko', 'updates/dkms/b.ko']),
    });
    expect(c.agree).toBe(true);
    expect(c.why).toEqual([]);
  });

  it('a .ko where dkms wrote .ko.xz is a disagreement on files and destinations', () => {
    const c = judge({
      module: 'acpi-call-dkms',
      kernel: '6.12.117+deb12-amd64',
      dkms: side('built', ['acpi_call.ko.xz'], ['updates/dkms/acpi_call.ko.xz']),
      kfarm: side('built', ['acpi_call.ko'], ['updates/dkms/acpi_call.ko']),
    });
    expect(c.agree).toBe(false);
    expect(c.why).toEqual([
      'files: only dkms acpi_call.ko.xz; only kfarm acpi_call.ko',
      'destinations: only dkms updates/dkms/acpi_call.ko.xz; only kfarm updates/dkms/acpi_call.ko',
    ]);
  });

  it('different verdicts disagree, and files are not compared then', () => {
    const c = judge({ module: 'm', kernel: 'k', dkms: side('excluded'), kfarm: side('built', ['m.ko'], ['updates/dkms/m.ko']) });
    expect(c.why).toEqual(['verdict: dkms excluded, kfarm built']);
  });

  it('a module refused before any kernel (dkms add failed, kfarm exit 2) agrees with failed and with refused, not with built', () => {
    expect(judge({ module: 'm', kernel: 'k', dkms: side('refused'), kfarm: side('refused') }).agree).toBe(true);
    expect(judge({ module: 'm', kernel: 'k', dkms: side('refused'), kfarm: side('failed') }).agree).toBe(true);
    expect(judge({ module: 'm', kernel: 'k', dkms: side('built'), kfarm: side('refused') }).agree).toBe(false);
  });

  it('both failed agrees; both without verdict (error) does not', () => {
    expect(judge({ module: 'm', kernel: 'k', dkms: side('failed'), kfarm: side('failed') }).agree).toBe(true);
    expect(judge({ module: 'm', kernel: 'k', dkms: side('error'), kfarm: side('error') }).agree).toBe(false);
  });

  it('a different destination alone disagrees', () => {
    const c = judge({ module: 'm', kernel: 'k', dkms: side('built', ['m.ko'], ['updates/dkms/m.ko']), kfarm: side('built', ['m.ko'], ['extra/m.ko']) });
    expect(c.why).toEqual(['destinations: only dkms updates/dkms/m.ko; only kfarm extra/m.ko']);
  });
});

describe('conformance: destinations and the agreement figure', () => {
  it('strips /lib/modules/<k>/ (and /usr/lib/modules/<k>/) from kfarm destinations', () => {
    expect(relativeDestination('/lib/modules/6.1.0-57-amd64/updates/dkms/x.ko', '6.1.0-57-amd64')).toBe('updates/dkms/x.ko');
    expect(relativeDestination('/usr/lib/modules/6.1.0-57-amd64/kernel/x.ko.xz', '6.1.0-57-amd64')).toBe('kernel/x.ko.xz');
    expect(relativeDestination('/lib/modules/other/x.ko', '6.1.0-57-amd64')).toBe('/lib/modules/other/x.ko');
  });

  it('counts agreeing cells, with one decimal of percent', () => {
    const yes = judge({ module: 'm', kernel: 'a', dkms: side('failed'), kfarm: side('failed') });
    const no = judge({ module: 'm', kernel: 'b', dkms: side('failed'), kfarm: side('built') });
    expect(agreement([yes, yes, no])).toEqual({ agree: 2, total: 3, percent: 66.7 });
    expect(agreement([])).toEqual({ agree: 0, total: 0, percent: 0 });
  });
});
