import type { Logger } from 'pino';
import { extractTar, packTar, type TarEntry } from '../executor/archive.js';
import type { ContainerRuntime } from '../executor/runtime.js';
import { KfarmError, isKfarmError } from '../errors/kfarm-error.js';
import { decompressModule } from './decompress.js';
import { checkModuleFileNames, compressedFormatProblem, type ModuleCompression } from './module-files.js';
import { PKEY_ID_PKCS7, isElf, parseModuleSignature, stripModuleSignature } from './module-signature.js';
import { verifyPkcs7 } from './openssl.js';
import { lastLines, runSigner } from './signer-container.js';
import { appendSignature, cmsSignature, compressModule } from './host-sign.js';
import { tokenKeyArgs, withTokenOpenssl, type TokenKey } from './pkcs11-token.js';
import { loadSigningKey, type SigningKey, type SigningPaths } from './signing-key.js';

export interface ModuleFile {
  /** as kfarm names it on the target: `hello.ko`, `hello.ko.xz` */
  fileName: string;
  data: Buffer;
}

export interface SignModulesRequest {
  runtime: ContainerRuntime;
  /** the kernel's image ref (KfarmImage.ref / the job's imageRef), e.g. kfarm/debian-12:6.1.0-57-amd64 */
  image: string;
  kernel: string;
  modules: readonly ModuleFile[];
  /** the key and cert as checkSigningSetup loaded them, or their paths (read and checked again) */
  key: SigningKey | SigningPaths | TokenKey;
  /** the kernel's CONFIG_MODULE_SIG_HASH (KernelSigner.hash): needed for a key in a token, signed on this host */
  hash?: string;
  labels?: Record<string, string>;
  logger?: Logger;
  signal?: AbortSignal;
}

const MiB = 1024 * 1024;
/** a PKCS#7 signature with its trailer is a few KiB; this leaves room for any key size */
const SIGNATURE_ALLOWANCE = 64 * 1024;

/**
 * Signs one kernel's modules in a fresh container of that kernel's image (runSigner), with
 * the kernel's own sign-file and hash, and returns the same list, signed and compressed as
 * before. What comes back is checked here: exactly the names sent, each the same module
 * byte for byte followed by a PKCS#7 signature that the host's openssl verifies against the
 * certificate, and xz still with CRC32. Any failure throws; nothing is returned unsigned.
 */
export async function signModules(request: SignModulesRequest): Promise<ModuleFile[]> {
  const { kernel, modules } = request;
  if (modules.length === 0) return [];
  const given = request.key;
  const key = 'keyPem' in given || 'kind' in given ? given : await loadSigningKey(given);
  const compressions = checkModuleFileNames(modules.map((m) => m.fileName));
  const started = Date.now();

  // What each module must be after signing: its ELF bytes, without any earlier signature.
  const unsigned = new Map<string, Buffer>();
  for (const m of modules) {
    const elf = await decompressModule(m.data, compressions.get(m.fileName) ?? 'none', `${m.fileName} for ${kernel}`);
    if (!isElf(elf)) throw new KfarmError('BAD_OPTION', `cannot sign ${m.fileName} for ${kernel}: it is not an ELF module`, { context: { kernel, module: m.fileName } });
    unsigned.set(m.fileName, stripModuleSignature(elf));
  }

  if ('kind' in key) return signWithToken(request, key, unsigned, compressions, started);

  const entries: TarEntry[] = [
    { path: 'key.pem', type: 'file', mode: 0o400, data: key.keyPem },
    { path: 'cert.pem', type: 'file', mode: 0o400, data: key.certPem },
    { path: 'in', type: 'directory', mode: 0o700 },
    ...modules.map((m): TarEntry => ({ path: `in/${m.fileName}`, type: 'file', mode: 0o600, data: m.data })),
  ];
  const stdin = await packTar(entries);
  const unpackedBytes = [...unsigned.values()].reduce((n, b) => n + b.length, 0);
  const inputBytes = modules.reduce((n, m) => n + m.data.length, 0);
  const outputLimit = inputBytes * 2 + modules.length * SIGNATURE_ALLOWANCE + MiB;

  const run = await runSigner({
    runtime: request.runtime,
    image: request.image,
    kernel,
    mode: 'sign',
    stdin,
    // the input, one module unpacked and signed at a time, and the output
    workMiB: Math.ceil((stdin.length + outputLimit + 2 * Math.max(...[...unsigned.values()].map((b) => b.length))) / MiB) + 16,
    outputLimitBytes: outputLimit,
    labels: request.labels,
    signal: request.signal,
  });
  if (run.exitCode !== 0 || !run.output) {
    throw new KfarmError('CONTAINER_FAILED', `signing the modules for ${kernel} failed (the signer exited with status ${run.exitCode})`, {
      context: { kernel, image: request.image },
      hint: lastLines(run.log),
    });
  }

  let files: TarEntry[];
  try {
    files = await extractTar(run.output, { maxBytes: outputLimit, maxEntries: modules.length + 1, allowSymlinks: false }, `the signed modules for ${kernel}`);
  } catch (err) {
    if (isKfarmError(err)) throw err;
    throw new KfarmError('UNSAFE_ARCHIVE', `the signed modules for ${kernel} are not a readable tar: ${(err as Error).message}`, { context: { kernel } });
  }
  const returned = new Map(files.filter((f) => f.type === 'file').map((f) => [f.path, f.data ?? Buffer.alloc(0)]));
  const refuse = (message: string) => new KfarmError('UNSAFE_ARCHIVE', `the signer for ${kernel} ${message}`, { context: { kernel, image: request.image } });
  if (files.some((f) => f.type !== 'file') || returned.size !== modules.length) {
    throw refuse(`handed back ${files.map((f) => f.path).join(', ') || 'nothing'} for ${modules.map((m) => m.fileName).join(', ')}`);
  }

  const signed: ModuleFile[] = [];
  for (const m of modules) {
    const data = returned.get(m.fileName);
    if (!data) throw refuse(`did not hand back ${m.fileName}`);
    const compression = compressions.get(m.fileName) ?? 'none';
    await checkSigned(m.fileName, data, compression, unsigned.get(m.fileName) ?? Buffer.alloc(0), key, refuse, kernel);
    signed.push({ fileName: m.fileName, data });
  }
  request.logger?.debug({ kernel, modules: signed.map((m) => m.fileName), unpackedBytes, ms: Date.now() - started }, 'modules signed');
  return signed;
}

/** A key in a PKCS#11 token: each module signed on this host through the engine (host-sign.ts says why), then checked as a signer's output is. */
async function signWithToken(
  request: SignModulesRequest,
  key: TokenKey,
  unsigned: Map<string, Buffer>,
  compressions: Map<string, ModuleCompression>,
  started: number,
): Promise<ModuleFile[]> {
  const { kernel, modules } = request;
  if (!request.hash) throw new Error(`no CONFIG_MODULE_SIG_HASH given for ${kernel}`); // signResults passes the probed one: a bug
  const hash = request.hash;
  const refuse = (message: string) => new KfarmError('UNSAFE_ARCHIVE', `signing on this host for ${kernel} ${message}`, { context: { kernel } });
  const signed = await withTokenOpenssl(key, async (env) => {
    const out: ModuleFile[] = [];
    for (const m of modules) {
      const elf = unsigned.get(m.fileName) ?? Buffer.alloc(0);
      const pkcs7 = await cmsSignature(elf, hash, { certPem: key.certPem, keyArgs: tokenKeyArgs(key, '-inkey'), env }, `${m.fileName} for ${kernel}`);
      const compression = compressions.get(m.fileName) ?? 'none';
      const data = await compressModule(appendSignature(elf, pkcs7), compression);
      await checkSigned(m.fileName, data, compression, elf, key, refuse, kernel);
      out.push({ fileName: m.fileName, data });
    }
    return out;
  });
  request.logger?.debug({ kernel, modules: signed.map((m) => m.fileName), token: key.uri, ms: Date.now() - started }, 'modules signed through the token');
  return signed;
}

async function checkSigned(
  name: string,
  data: Buffer,
  compression: ModuleCompression,
  unsigned: Buffer,
  key: Pick<SigningKey, 'certPem'>,
  refuse: (message: string) => KfarmError,
  kernel: string,
): Promise<void> {
  const formatProblem = compressedFormatProblem(data, compression);
  if (formatProblem) throw refuse(`handed back ${name}, which ${formatProblem}`);
  const elf = await decompressModule(data, compression, `the signed ${name} for ${kernel}`);
  let signature;
  try {
    signature = parseModuleSignature(elf);
  } catch (err) {
    throw refuse(`handed back ${name} with a broken signature trailer: ${(err as Error).message}`);
  }
  if (!signature) throw refuse(`handed back ${name} without a module signature`);
  if (signature.idType !== PKEY_ID_PKCS7) throw refuse(`handed back ${name} with a signature of type ${signature.idType}, not PKCS#7`);
  // the signer may append a signature, nothing else: the module's own bytes come back unchanged
  if (!signature.content.equals(unsigned)) throw refuse(`changed the bytes of ${name}, not only appended a signature`);
  const verified = await verifyPkcs7(signature.content, signature.pkcs7, key.certPem);
  if (!verified.ok) throw refuse(`handed back ${name} with a signature that does not verify against the certificate: ${verified.output.split('\n')[0] ?? ''}`);
}
