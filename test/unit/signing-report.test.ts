import { createHash } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { signingImagesOf } from '../../src/coordinator/sign-out-dir.js';
import type { KfarmImage } from '../../src/images/catalog.js';
import { deliverablesOf, writeChecksums } from '../../src/packaging/checksums.js';
import { parseReport } from '../../src/report/read-report.js';
import type { BuildReport } from '../../src/report/report.js';
import { setSigning, signingOf } from '../../src/report/signing-report.js';
import { sampleReport } from '../fixtures/junit/sample-report.js';

const sha = (data: string) => createHash('sha256').update(data).digest('hex');
const CERT = 'DER bytes of a certificate';
const ENROLL = '# Enrolling the module signing key\n';

function signedReport(): BuildReport {
  const report: BuildReport = { ...sampleReport(), modules: undefined, kernels: [] };
  setSigning(report, {
    subject: 'CN=kfarm test',
    serial: '1A2B',
    files: [
      { path: 'signing-cert.der', sha256: sha(CERT), size: CERT.length },
      { path: 'ENROLL.md', sha256: sha(ENROLL), size: ENROLL.length },
    ],
  });
  return report;
}

describe("report.json's signing: the enrolment files are deliverables", () => {
  it('SHA256SUMS lists signing-cert.der and ENROLL.md of signed modules, and sha256sum -c agrees', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kfarm-signing-sums-'));
    const report = signedReport();
    await writeFile(path.join(dir, 'signing-cert.der'), CERT);
    await writeFile(path.join(dir, 'ENROLL.md'), ENROLL);
    for (const f of ['report.json', 'junit.xml', 'report.html']) await writeFile(path.join(dir, f), f);
    await writeChecksums(dir, report);
    const listed = (await readFile(path.join(dir, 'SHA256SUMS'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => l.split('  ')[1]);
    expect(listed).toEqual(['ENROLL.md', 'junit.xml', 'report.html', 'report.json', 'signing-cert.der']);
    const check = await execa('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: dir, reject: false });
    expect(check.exitCode, check.stderr).toBe(0);
  });

  it('an unsigned report lists no enrolment file, even when an earlier signed build left them', () => {
    const report: BuildReport = { ...sampleReport(), modules: undefined, kernels: [] };
    expect(deliverablesOf(report).map((d) => d.path)).toEqual(['junit.xml', 'report.html', 'report.json']);
  });

  it('a certificate changed since the report was written is refused, not vouched for', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kfarm-signing-sums-'));
    await writeFile(path.join(dir, 'signing-cert.der'), 'another certificate');
    await writeFile(path.join(dir, 'ENROLL.md'), ENROLL);
    for (const f of ['report.json', 'junit.xml', 'report.html']) await writeFile(path.join(dir, f), f);
    await expect(writeChecksums(dir, signedReport())).rejects.toMatchObject({ code: 'BAD_OPTION', message: expect.stringContaining('signing-cert.der does not match') });
  });

  it('survives a read of report.json (kfarm pack, kfarm verify rewrite it), and a path out of the out dir is bad input', () => {
    const text = JSON.stringify(signedReport());
    expect(signingOf(parseReport(text, 'report.json'))?.files.map((f) => f.path)).toEqual(['signing-cert.der', 'ENROLL.md']);
    const hostile = signedReport() as BuildReport & { signing: { files: Array<{ path: string }> } };
    hostile.signing.files[0]!.path = '../../etc/passwd';
    expect(() => deliverablesOf(parseReport(JSON.stringify(hostile), 'report.json'))).toThrow(/signing\.files\.0\.path: not a path inside the out dir/);
  });
});

describe('kfarm sign: the images that sign', () => {
  const image = (name: string, kernel: string): KfarmImage => ({ name, ref: `kfarm/${name}:${kernel}`, id: `sha256:${kernel}`, arch: 'x86_64', kernels: [kernel] });
  const held = [image('debian-12', '6.1.0-57-amd64'), image('debian-12', '6.12.43+deb12-amd64'), image('debian-13', '6.12.43+deb13-amd64')];

  it("each row's kernel in the image it was built in, once", () => {
    const rows = [
      { kernel: '6.1.0-57-amd64', image: 'debian-12', release: 'debian-12' },
      { kernel: '6.12.43+deb12-amd64', image: 'debian-12', release: 'debian-12' },
      { kernel: '6.1.0-57-amd64', image: 'debian-12', release: 'debian-12' },
    ];
    expect(signingImagesOf(rows, held).map((i) => i.ref)).toEqual(['kfarm/debian-12:6.1.0-57-amd64', 'kfarm/debian-12:6.12.43+deb12-amd64']);
  });

  it('a kernel whose image is not on this host is refused, saying how to get it', () => {
    let caught: unknown;
    try {
      signingImagesOf([{ kernel: '6.1.0-56-amd64', image: 'debian-12', release: 'debian-12' }], held);
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'BAD_OPTION', message: expect.stringContaining('no kfarm image of debian-12 holds that kernel') as string });
    expect((caught as { hint?: string }).hint).toContain('kfarm images sync debian-12 --kernels 6.1.0-56-amd64');
  });
});
