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
    // Each option on its own, so that a refusal of one never stands in for the other's.
    const refusal = (options: { mirror?: string; securityMirror?: string }): unknown => {
      try {
        resolveMirrors(options);
      } catch (err) {
        return err;
      }
      return undefined;
    };
    const mirror = refusal({ mirror: url });
    expect(isKfarmError(mirror, 'BAD_OPTION')).toBe(true);
    expect((mirror as Error).message).toMatch(/^--mirror /);
    const security = refusal({ securityMirror: url });
    expect(isKfarmError(security, 'BAD_OPTION')).toBe(true);
    expect((security as Error).message).toMatch(/^--security-mirror /);
  });
});
