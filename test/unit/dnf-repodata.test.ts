import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';
import { repomdFiles, swapSteps } from '../../src/publish/dnf-repodata.js';
import { armorPublicKey, dnfRepoFile } from '../../src/publish/dnf-repo-file.js';
import { unverified } from '../../src/publish/dnf-rpm.js';

/** repomd.xml as createrepo_c 0.17.3 wrote it for a publish of hello (test/integration/publish-dnf.test.ts) */
const recorded = await readFile(path.join(packageRoot, 'test/fixtures/dnf/repomd.xml'), 'utf8');
const NEW = repomdFiles(recorded);
const old = (kind: string) => `${'0'.repeat(64)}-${kind}.xml.gz`;
const PREVIOUS = `<repomd>${['primary', 'filelists', 'other'].map((k) => `<location href="repodata/${old(k)}"/>`).join('')}</repomd>`;
const older = `${'9'.repeat(64)}-primary.xml.gz`;

describe('repodata swap order', () => {
  it('reads the data files a repomd.xml names', () => {
    expect(NEW.map((n) => n.replace(/^[0-9a-f]{64}-/, ''))).toEqual(['primary.xml.gz', 'filelists.xml.gz', 'other.xml.gz']);
  });

  it('moves every new data file before repomd.xml, repomd.xml before its signature, and removes only after both', () => {
    const steps = swapSteps(recorded, PREVIOUS, ['repomd.xml', 'repomd.xml.asc', ...['primary', 'filelists', 'other'].map(old), older]);
    const at = (op: string, name: string) => steps.findIndex((s) => s.op === op && s.name === name);
    for (const name of NEW) expect(at('move', name)).toBeLessThan(at('move', 'repomd.xml'));
    expect(at('move', 'repomd.xml')).toBeLessThan(at('move', 'repomd.xml.asc'));
    expect(steps.filter((s) => s.op === 'remove')).toEqual([{ op: 'remove', name: older }]);
    expect(at('remove', older)).toBeGreaterThan(at('move', 'repomd.xml.asc'));
  });

  it('keeps the generation it replaces (readers that fetched the old repomd.xml) and moves no file repodata/ holds already', () => {
    const steps = swapSteps(recorded, PREVIOUS, ['repomd.xml', NEW[0]!, ...['primary', 'filelists', 'other'].map(old), 'stray.tmp']);
    expect(steps).toEqual([
      { op: 'move', name: NEW[1] },
      { op: 'move', name: NEW[2] },
      { op: 'move', name: 'repomd.xml' },
      { op: 'move', name: 'repomd.xml.asc' },
      { op: 'remove', name: 'stray.tmp' },
    ]);
  });

  it('a first publish moves everything and removes nothing', () => {
    expect(swapSteps(recorded, '', [])).toEqual([...NEW.map((name) => ({ op: 'move', name })), { op: 'move', name: 'repomd.xml' }, { op: 'move', name: 'repomd.xml.asc' }]);
  });
});

describe('what clients are given', () => {
  it('a .repo file with both checks on and the key beside the repository', () => {
    expect(dnfRepoFile({ baseUrl: 'https://example.org/rpm/' })).toBe(
      '[kfarm]\nname=kernel modules built by kfarm\nbaseurl=https://example.org/rpm\nenabled=1\ngpgcheck=1\nrepo_gpgcheck=1\ngpgkey=https://example.org/rpm/RPM-GPG-KEY-kfarm\n',
    );
    expect(() => dnfRepoFile({ baseUrl: 'https://x\ngpgcheck=0' })).toThrow(/is not an http\(s\), ftp or file URL/);
    expect(() => dnfRepoFile({ baseUrl: '/srv/repo' })).toThrow(/is not an http/);
    expect(() => dnfRepoFile({ id: 'a]\n[b', baseUrl: 'file:///r' })).toThrow(/repository id/);
  });

  it('armors a public key as gpg does (RFC 4880 CRC-24)', () => {
    // CRC-24/OPENPGP's check value: "123456789" gives 0x21cf02, =Ic8C in base64
    expect(armorPublicKey(Buffer.from('123456789'))).toBe('-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nMTIzNDU2Nzg5\n=Ic8C\n-----END PGP PUBLIC KEY BLOCK-----\n');
  });

  it('rpm -K output: only "digests signatures OK" passes, and a file rpm did not mention fails', () => {
    const out = ['/r/a.rpm: digests signatures OK', '/r/b.rpm: digests SIGNATURES NOT OK', '/r/c: d.rpm: DIGESTS SIGNATURES NOT OK'].join('\n');
    expect(unverified(['/r/a.rpm', '/r/b.rpm', '/r/c: d.rpm', '/r/e.rpm'], out)).toEqual([
      { file: '/r/b.rpm', why: 'digests SIGNATURES NOT OK' },
      { file: '/r/c: d.rpm', why: 'DIGESTS SIGNATURES NOT OK' },
      { file: '/r/e.rpm', why: 'rpm said nothing about it' },
    ]);
  });
});
