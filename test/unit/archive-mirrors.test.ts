import { describe, expect, it } from 'vitest';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { DEFAULT_MIRRORS, resolveMirrors } from '../../src/archive/releases.js';

describe('archive mirrors (--mirror, --security-mirror)', () => {
  it("defaults to Debian's, takes http(s) URLs without a trailing slash", () => {
    expect(resolveMirrors({})).toEqual(DEFAULT_MIRRORS);
    expect(resolveMirrors({ mirror: 'http://mirror.local/debian/', securityMirror: 'https://sec.local:8443/debian-security' })).toEqual({
      debian: 'http://mirror.local/debian',
      'debian-security': 'https://sec.local:8443/debian-security',
    });
  });

  it.each(['ftp://x/debian', 'mirror.local/debian', 'http://x/debian?a=1', ''])('refuses %j as bad input', (url) => {
    expect(() => resolveMirrors({ mirror: url })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    try {
      resolveMirrors({ securityMirror: url });
    } catch (err) {
      expect(isKfarmError(err, 'BAD_OPTION') && err.message.startsWith('--security-mirror')).toBe(true);
    }
  });
});
