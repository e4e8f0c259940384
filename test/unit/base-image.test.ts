import { describe, expect, it } from 'vitest';
import { parseDebianMirror } from '../../src/images/base-image.js';

describe('parseDebianMirror', () => {
  it('reads the main archive from deb822 sources and skips the security archive', () => {
    const text = [
      'Types: deb',
      '# http://snapshot.debian.org/archive/debian-security/20250520T000000Z',
      'URIs: http://deb.debian.org/debian-security',
      'Suites: bookworm-security',
      'Components: main',
      '',
      'Types: deb',
      'URIs: http://mirror.example.org/debian/',
      'Suites: bookworm bookworm-updates',
      'Components: main',
    ].join('\n');
    expect(parseDebianMirror(text)).toBe('http://mirror.example.org/debian');
  });

  it.each(['bullseye', 'bookworm', 'trixie', 'stable', 'sid'])('reads a one-line source whatever its suite (%s)', (suite) => {
    expect(parseDebianMirror(`deb http://ftp.example.net/debian ${suite} main contrib\n`)).toBe('http://ftp.example.net/debian');
  });

  it('reads one-line sources with options and skips comments, deb-src and security lines', () => {
    const text = [
      '# deb http://commented.example/debian bullseye main',
      'deb-src http://src.example/debian bullseye main',
      'deb http://security.debian.org/debian-security bullseye-security main',
      'deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] https://mirror.example/debian bullseye main',
    ].join('\n');
    expect(parseDebianMirror(text)).toBe('https://mirror.example/debian');
  });

  it('takes a later URI of a multi-URI deb822 stanza and skips disabled stanzas', () => {
    const text = [
      'Types: deb',
      'URIs: http://off.example/debian',
      'Suites: trixie',
      'Enabled: no',
      '',
      'Types: deb',
      'URIs: http://deb.debian.org/debian-ports http://two.example/debian',
      'Suites: trixie',
    ].join('\n');
    expect(parseDebianMirror(text)).toBe('http://two.example/debian');
  });

  it('answers undefined when no source names a Debian main archive', () => {
    expect(parseDebianMirror('')).toBeUndefined();
    expect(parseDebianMirror('deb http://archive.ubuntu.com/ubuntu jammy main\n')).toBeUndefined();
    expect(parseDebianMirror('deb cdrom:[Debian GNU/Linux]/ bullseye main\n')).toBeUndefined();
  });
});
