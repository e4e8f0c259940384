import { describe, expect, it } from 'vitest';
import { parseStanzas } from '../../src/archive/deb822.js';
import { pickKernelDeb } from '../../src/verify/kernel-deb.js';

const sha = (c: string) => c.repeat(64);
const stanza = (pkg: string, version: string, filename: string, hash = sha('a')) =>
  parseStanzas(`Package: ${pkg}\nVersion: ${version}\nFilename: ${filename}\nSize: 70584724\nSHA256: ${hash}\n`)[0]!;
const base = 'http://deb.debian.org/debian-security';

describe('pickKernelDeb', () => {
  it('prefers the -unsigned package and its newest version', () => {
    const picked = pickKernelDeb(
      [
        { stanza: stanza('linux-image-6.1.0-57-amd64', '6.1.192-3', 'pool/main/l/linux-signed-amd64/linux-image-6.1.0-57-amd64_6.1.192-3_amd64.deb'), baseUrl: base },
        { stanza: stanza('linux-image-6.1.0-57-amd64-unsigned', '6.1.192-2', 'pool/updates/main/l/linux/old.deb', sha('b')), baseUrl: base },
        { stanza: stanza('linux-image-6.1.0-57-amd64-unsigned', '6.1.192-3', 'pool/updates/main/l/linux/new.deb', sha('c')), baseUrl: base },
      ],
      '6.1.0-57-amd64',
    );
    expect(picked).toEqual({
      package: 'linux-image-6.1.0-57-amd64-unsigned',
      version: '6.1.192-3',
      url: `${base}/pool/updates/main/l/linux/new.deb`,
      sha256: sha('c'),
      size: 70584724,
    });
  });

  it('takes linux-image-<kver> where there is no unsigned twin, and nothing for another kernel', () => {
    const stanzas = [{ stanza: stanza('linux-image-6.12.117+deb12-arm64', '6.12.117-1', 'pool/main/l/x.deb'), baseUrl: base }];
    expect(pickKernelDeb(stanzas, '6.12.117+deb12-arm64')?.package).toBe('linux-image-6.12.117+deb12-arm64');
    expect(pickKernelDeb(stanzas, '6.1.0-57-arm64')).toBeUndefined();
  });

  it('ignores entries whose file is not a pool path of the mirror', () => {
    const stanzas = [
      { stanza: stanza('linux-image-6.1.0-57-amd64-unsigned', '1', '../../etc/x.deb'), baseUrl: base },
      { stanza: stanza('linux-image-6.1.0-57-amd64-unsigned', '1', 'pool/../x.deb'), baseUrl: base },
    ];
    expect(pickKernelDeb(stanzas, '6.1.0-57-amd64')).toBeUndefined();
  });
});
