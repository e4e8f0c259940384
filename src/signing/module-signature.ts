/**
 * The kernel's appended module signature (include/linux/module_signature.h): the module's
 * bytes, a PKCS#7 blob, a 12-byte `struct module_signature` whose last field is the blob's
 * length (big-endian u32), then the magic string. Pure: used to check what a signing
 * container hands back, and by the tests to verify signatures without a kernel.
 */
export const SIGNATURE_MAGIC = Buffer.from('~Module signature appended~\n', 'latin1');
/** sizeof(struct module_signature) */
export const SIGNATURE_INFO_SIZE = 12;
/** module_signature.id_type of a PKCS#7 signature, the only kind sign-file writes */
export const PKEY_ID_PKCS7 = 2;

export interface ModuleSignature {
  /** the bytes the signature covers: the module as it was before signing */
  content: Buffer;
  /** the DER PKCS#7 (CMS SignedData) blob */
  pkcs7: Buffer;
  idType: number;
}

export function hasModuleSignature(module: Buffer): boolean {
  return module.length >= SIGNATURE_MAGIC.length && module.subarray(module.length - SIGNATURE_MAGIC.length).equals(SIGNATURE_MAGIC);
}

/** undefined for a module without the magic; throws for a trailer whose length does not fit the file. */
export function parseModuleSignature(module: Buffer): ModuleSignature | undefined {
  if (!hasModuleSignature(module)) return undefined;
  const infoEnd = module.length - SIGNATURE_MAGIC.length;
  const infoStart = infoEnd - SIGNATURE_INFO_SIZE;
  if (infoStart < 0) throw new Error('the module signature trailer is cut short');
  const info = module.subarray(infoStart, infoEnd);
  const sigLen = info.readUInt32BE(8);
  const sigStart = infoStart - sigLen;
  if (sigLen === 0 || sigStart < 0) throw new Error(`the module signature claims ${sigLen} bytes, which do not fit the ${module.length}-byte file`);
  return { content: module.subarray(0, sigStart), pkcs7: module.subarray(sigStart, infoStart), idType: info.readUInt8(2) };
}

/** The module without its signature (unchanged when it has none). */
export function stripModuleSignature(module: Buffer): Buffer {
  return parseModuleSignature(module)?.content ?? module;
}

export const isElf = (data: Buffer): boolean => data.length >= 4 && data.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
