/** Signing built modules for Secure Boot: check the setup before a build, sign each kernel's modules after it. */
export { checkSigningSetup, type KernelSigner, type SigningSetup } from './signing-setup.js';
export { signModules, type ModuleFile, type SignModulesRequest } from './sign-modules.js';
export { loadSigningKey, type SigningKey, type SigningPaths } from './signing-key.js';
export { parseModuleSignature, stripModuleSignature, hasModuleSignature, SIGNATURE_MAGIC } from './module-signature.js';
export { verifyPkcs7 } from './openssl.js';
export { loadTokenKey, type TokenKey } from './pkcs11-token.js';
export { isPkcs11Uri, parsePkcs11Uri } from './pkcs11-uri.js';
export { appendSignature, cmsSignature } from './host-sign.js';
