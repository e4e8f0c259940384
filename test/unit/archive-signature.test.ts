import { describe, expect, it } from 'vitest';
import { signatureVerdict } from '../../src/archive/inrelease-signature.js';

// gpgv --status-fd lines as gpgv 2.2 writes them (the real runs are in archive-discovery.test.ts)
const good =
  '[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG 6ED0E7B82643E131 Debian Archive Automatic Signing Key (12/bookworm) <ftpmaster@debian.org>\n[GNUPG:] VALIDSIG 4CB50190207B4758A3F73A796ED0E7B82643E131 2026-11-28 0 4 0 22 8 01\n';
const missing = '[GNUPG:] NEWSIG\n[GNUPG:] ERRSIG 762F67A0B2C39DE4 22 8 01 1796666675 9 -\n[GNUPG:] NO_PUBKEY 762F67A0B2C39DE4\n';

describe('gpgv status: apt’s rule', () => {
  it('one good signature vouches, also next to keys the keyring lacks', () => {
    expect(signatureVerdict(good)).toEqual({ ok: true, keys: ['6ED0E7B82643E131'] });
    expect(signatureVerdict(missing + good)).toMatchObject({ ok: true });
  });

  it('a bad signature refuses, whatever else is good', () => {
    expect(signatureVerdict(`${good}[GNUPG:] NEWSIG\n[GNUPG:] BADSIG 762F67A0B2C39DE4 Debian\n`)).toEqual({
      ok: false,
      why: 'a BAD signature by key 762F67A0B2C39DE4: the file was altered',
    });
  });

  it('unknown keys only, expired or revoked keys only, or no signature: refused, saying which', () => {
    expect(signatureVerdict(missing)).toEqual({ ok: false, why: 'signed only by keys the keyring does not hold (762F67A0B2C39DE4)' });
    expect(signatureVerdict('[GNUPG:] EXPKEYSIG 6ED0E7B82643E131 Debian\n[GNUPG:] VALIDSIG 4CB5 x\n')).toEqual({
      ok: false,
      why: 'signed only by expired or revoked keys (6ED0E7B82643E131)',
    });
    expect(signatureVerdict('gpgv: no signature found\n[GNUPG:] NODATA 4\n')).toEqual({ ok: false, why: 'no signature' });
    expect(signatureVerdict('gpgv: Good signature from "GOODSIG"\n')).toEqual({ ok: false, why: 'no signature' }); // human text is not status
  });
});
