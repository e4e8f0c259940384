import { describe, expect, it } from 'vitest';
import { judge } from '../../bench/conformance/compare.js';
import { defaultKernels, parseOptions } from '../../bench/conformance/options.js';
import { agreementLine, beginMarker, endMarker, renderMarkdown, renderText, spliceSection, type ReleaseResult } from '../../bench/conformance/render.js';

const result: ReleaseResult = {
  release: 'debian-12',
  dkmsVersion: '3.0.10-8+deb12u1',
  kernels: ['6.1.0-57-amd64', '6.12.117+deb12-amd64'],
  sources: ['acpi-call-dkms 1.2.2-2'],
  missing: ['vpoll-dkms'],
  cells: [
    judge({
      module: 'acpi-call-dkms',
      kernel: '6.1.0-57-amd64',
      dkms: { verdict: 'built', files: ['acpi_call.ko'], destinations: ['updates/dkms/acpi_call.ko'], detail: '' },
      kfarm: { verdict: 'built', files: ['acpi_call.ko'], destinations: ['updates/dkms/acpi_call.ko'], detail: '' },
    }),
    judge({
      module: 'acpi-call-dkms',
      kernel: '6.12.117+deb12-amd64',
      dkms: { verdict: 'built', files: ['acpi_call.ko.xz'], destinations: ['updates/dkms/acpi_call.ko.xz'], detail: '' },
      kfarm: { verdict: 'built', files: ['acpi_call.ko'], destinations: ['updates/dkms/acpi_call.ko'], detail: '' },
    }),
  ],
};

describe('conformance: the printed table', () => {
  it('has a row per cell with both verdicts and file sets, the missing packages and the agreement figure', () => {
    const text = renderText(result);
    expect(text).toMatch(/acpi-call-dkms\s+6\.1\.0-57-amd64\s+built\s+built\s+acpi_call\.ko\s+acpi_call\.ko\s+updates\/dkms\/acpi_call\.ko\s+updates\/dkms\/acpi_call\.ko\s+yes/);
    expect(text).toMatch(/6\.12\.117\+deb12-amd64\s+built\s+built\s+acpi_call\.ko\.xz\s+acpi_call\.ko\s.*no: files: only dkms acpi_call\.ko\.xz/);
    expect(text).toContain('not in debian-12: vpoll-dkms');
    expect(text.split('\n').at(-1)).toBe('debian-12 (dkms 3.0.10-8+deb12u1): agreement: 1/2 cells (50%)');
    expect(agreementLine(result)).toBe('debian-12 (dkms 3.0.10-8+deb12u1): agreement: 1/2 cells (50%)');
  });

  it('the markdown section sits between the release markers, with a row per cell', () => {
    const md = renderMarkdown(result, '2026-01-01');
    expect(md.startsWith(beginMarker('debian-12'))).toBe(true);
    expect(md.endsWith(endMarker('debian-12'))).toBe(true);
    expect(md).toContain('| acpi-call-dkms | 6.12.117+deb12-amd64 | built | built | `acpi_call.ko.xz` | `acpi_call.ko` |');
    expect(md.split('\n').filter((l) => l.startsWith('| acpi-call-dkms'))).toHaveLength(2);
  });
});

describe('conformance: docs/conformance.md is regenerated in place', () => {
  it('replaces only the release own section and keeps the hand-written text around it', () => {
    const doc = `# Title\n\nhand text\n\n${beginMarker('debian-11')}\nold 11\n${endMarker('debian-11')}\n\n${beginMarker('debian-12')}\nold 12\n${endMarker('debian-12')}\n\n## Why\nkept\n`;
    const next = spliceSection(doc, 'debian-12', `${beginMarker('debian-12')}\nnew 12\n${endMarker('debian-12')}`);
    expect(next).toBe(doc.replace('old 12', 'new 12'));
  });

  it('appends a release not there yet', () => {
    const next = spliceSection('# Title\n\ntext\n', 'debian-13', `${beginMarker('debian-13')}\nx\n${endMarker('debian-13')}`);
    expect(next).toBe(`# Title\n\ntext\n\n${beginMarker('debian-13')}\nx\n${endMarker('debian-13')}\n`);
  });
});

describe('conformance: options and the default kernels', () => {
  it('defaults to all three releases and docs/conformance.md', () => {
    expect(parseOptions([])).toMatchObject({ releases: ['debian-11', 'debian-12', 'debian-13'], kernels: undefined, allKernels: false, corpus: [], doc: 'docs/conformance.md' });
  });

  it('reads each option', () => {
    const o = parseOptions([
      '--release',
      'debian-12,debian-13',
      '--kernels',
      '6.1.*',
      '--all-kernels',
      '--corpus',
      'a',
      '--corpus',
      'b',
      '--packages',
      'acpi-call-dkms',
      '--no-doc',
      '--refresh',
    ]);
    expect(o).toEqual({
      releases: ['debian-12', 'debian-13'],
      kernels: '6.1.*',
      allKernels: true,
      corpus: ['a', 'b'],
      packages: ['acpi-call-dkms'],
      doc: undefined,
      refresh: true,
    });
  });

  it('refuses an unknown release or option, and a missing value, with the usage', () => {
    expect(() => parseOptions(['--release', 'debian-10'])).toThrow(/unknown release debian-10/);
    expect(() => parseOptions(['--frobnicate'])).toThrow(/unknown option --frobnicate/);
    expect(() => parseOptions(['--kernels'])).toThrow(/--kernels needs a value/);
  });

  it('picks at most 3: generic before cloud/rt, the newest of each series first', () => {
    const held = ['6.1.0-56-amd64', '6.1.0-57-amd64', '6.12.117+deb12-amd64', '6.12.117+deb12-cloud-amd64', '6.12.117+deb12-rt-amd64'];
    expect(defaultKernels(held, 3)).toEqual(['6.1.0-56-amd64', '6.1.0-57-amd64', '6.12.117+deb12-amd64']);
    expect(defaultKernels(held, 2)).toEqual(['6.1.0-57-amd64', '6.12.117+deb12-amd64']);
    expect(defaultKernels(['7.3.4+deb13-amd64', '7.3.4+deb13-cloud-amd64', '7.3.4+deb13-rt-amd64'], 3)).toHaveLength(3);
    expect(defaultKernels(['5.10.0-30-amd64', '5.10.0-46-amd64', '5.10.0-45-amd64', '5.10.0-44-amd64', '5.10.0-46-rt-amd64'], 3)).toEqual([
      '5.10.0-44-amd64',
      '5.10.0-45-amd64',
      '5.10.0-46-amd64',
    ]);
    expect(defaultKernels(held, Infinity)).toHaveLength(5);
  });
});
