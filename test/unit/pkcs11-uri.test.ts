import { describe, expect, it } from 'vitest';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { parsePkcs11Uri } from '../../src/signing/pkcs11-uri.js';

const refusal = (uri: string) => {
  try {
    parsePkcs11Uri(uri);
  } catch (err) {
    if (isKfarmError(err)) return err;
    throw err;
  }
  throw new Error('accepted');
};

describe('parsePkcs11Uri', () => {
  it('reads token, object, id (binary, as hex), pin-source and module-path; the engine gets the path and type=private', () => {
    const u = parsePkcs11Uri('pkcs11:token=My%20HSM;object=mod%20sign;id=%01%ff?pin-source=file:/run/pin&module-path=/usr/lib/x.so');
    expect(u).toMatchObject({ token: 'My HSM', object: 'mod sign', id: '01ff', pinSource: '/run/pin', modulePath: '/usr/lib/x.so' });
    expect(u.engineUri).toBe('pkcs11:token=My%20HSM;object=mod%20sign;id=%01%ff;type=private');
    expect(u.uri).toBe('pkcs11:token=My%20HSM;object=mod%20sign;id=%01%ff');
    expect(parsePkcs11Uri('pkcs11:token=t;object=k;type=private').engineUri).toBe('pkcs11:token=t;object=k;type=private');
  });

  it('refuses a PIN in the URI (without echoing it), no token, no key, a public key, an unknown attribute, bad encoding', () => {
    const pin = refusal('pkcs11:token=t;object=k?pin-value=secret123');
    expect(pin.code).toBe('BAD_OPTION');
    expect(pin.message).toMatch(/pin-value/);
    expect(`${pin.message} ${pin.hint ?? ''}`).not.toContain('secret123');
    expect(refusal('pkcs11:object=k').message).toMatch(/names no token/);
    expect(refusal('pkcs11:token=t').message).toMatch(/names no key/);
    expect(refusal('pkcs11:token=t;object=k;type=public').message).toMatch(/not a private key/);
    expect(refusal('pkcs11:token=t;object=k;colour=red').message).toMatch(/not a PKCS#11 URI path attribute/);
    expect(refusal('pkcs11:token=t;object=%zz').message).toMatch(/percent-encoded/);
  });
});
