import { describe, expect, it } from 'vitest';
import { PKEY_ID_PKCS7, SIGNATURE_MAGIC, hasModuleSignature, isElf, parseModuleSignature, stripModuleSignature } from '../../src/signing/module-signature.js';

/** a module as sign-file leaves it: bytes, PKCS#7, struct module_signature, magic */
function signedModule(body: Buffer, pkcs7: Buffer): Buffer {
  const info = Buffer.alloc(12);
  info.writeUInt8(PKEY_ID_PKCS7, 2);
  info.writeUInt32BE(pkcs7.length, 8);
  return Buffer.concat([body, pkcs7, info, SIGNATURE_MAGIC]);
}

const body = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.alloc(300, 7)]);
const pkcs7 = Buffer.alloc(450, 0x30);

describe('module signature trailer', () => {
  it('cuts a signed module into the signed content and the PKCS#7 blob', () => {
    const sig = parseModuleSignature(signedModule(body, pkcs7));
    expect(sig?.content.equals(body)).toBe(true);
    expect(sig?.pkcs7.equals(pkcs7)).toBe(true);
    expect(sig?.idType).toBe(PKEY_ID_PKCS7);
  });

  it('is 28 bytes of magic ending in a newline, as the kernel writes it', () => {
    expect(SIGNATURE_MAGIC.length).toBe(28);
    expect(SIGNATURE_MAGIC.toString('latin1')).toBe('~Module signature appended~\n');
  });

  it('sees no signature in an unsigned module, or in one whose magic lost its newline', () => {
    expect(parseModuleSignature(body)).toBeUndefined();
    expect(hasModuleSignature(signedModule(body, pkcs7).subarray(0, -1))).toBe(false);
    expect(stripModuleSignature(body)).toBe(body);
  });

  it('strips a signature back to the original bytes', () => {
    expect(stripModuleSignature(signedModule(body, pkcs7)).equals(body)).toBe(true);
  });

  it('refuses a trailer whose length does not fit the file, or is zero', () => {
    const info = Buffer.alloc(12);
    info.writeUInt32BE(10_000, 8);
    expect(() => parseModuleSignature(Buffer.concat([body, info, SIGNATURE_MAGIC]))).toThrow(/do not fit/);
    expect(() => parseModuleSignature(Buffer.concat([body, Buffer.alloc(12), SIGNATURE_MAGIC]))).toThrow(/claims 0 bytes/);
    expect(() => parseModuleSignature(Buffer.concat([Buffer.alloc(3), SIGNATURE_MAGIC]))).toThrow(/cut short/);
  });

  it('knows an ELF file by its magic', () => {
    expect(isElf(body)).toBe(true);
    expect(isElf(Buffer.from('MZ\0\0'))).toBe(false);
  });
});
