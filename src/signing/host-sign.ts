import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { KfarmError } from '../errors/kfarm-error.js';
import type { ModuleCompression } from './module-files.js';
import { PKEY_ID_PKCS7, SIGNATURE_INFO_SIZE, SIGNATURE_MAGIC } from './module-signature.js';
import { openssl } from './openssl.js';

/**
 * sign-file's signature made on this host, for a key in a PKCS#11 token. Why not the kernel's
 * own sign-file in its image, as for a key file: the token is a device (or SoftHSM2's store)
 * of this host, and a signer container would have to mount it and its library, giving a
 * container that ran next to module builds a handle on the key. The issue allows "an
 * equivalent that writes the same signature", so this is that equivalent: sign-file's CMS
 * (scripts/sign-file.c, OpenSSL >= 1.0: CMS_sign with CMS_NOCERTS|CMS_BINARY|CMS_DETACHED,
 * CMS_add1_signer with CMS_NOATTR and the signer named by issuer and serial, as kfarm calls
 * it without -k) is exactly `openssl cms -sign -binary -noattr -nocerts` (detached by
 * default), with the kernel's CONFIG_MODULE_SIG_HASH; the trailer is module_signature's. RSA
 * PKCS#1 v1.5 is deterministic, so for a key file this writes sign-file's bytes exactly:
 * test/integration/pkcs11-signing.test.ts compares them on a real module.
 */
export interface HostSigner {
  certPem: Buffer;
  /** the openssl arguments naming the key (-inkey file, or the engine's) */
  keyArgs: string[];
  env?: Record<string, string>;
}

/** The detached DER CMS signature sign-file would make over `content`. */
export async function cmsSignature(content: Buffer, hash: string, signer: HostSigner, label: string): Promise<Buffer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kfarm-hostsign-'));
  try {
    const cert = path.join(dir, 'cert.pem');
    await writeFile(cert, signer.certPem);
    const r = await openssl(['cms', '-sign', '-binary', '-noattr', '-nocerts', '-outform', 'DER', '-md', hash, '-signer', cert, ...signer.keyArgs], {
      input: content,
      ...(signer.env ? { env: signer.env } : {}),
    });
    if (r.exitCode !== 0 || r.stdout.length === 0) {
      const why = r.stderr
        .split('\n')
        .filter((l) => l.trim() && !/^Engine "pkcs11" set\./.test(l))
        .slice(0, 3)
        .join('; ');
      throw new KfarmError('COMMAND_FAILED', `signing ${label} failed: openssl cms -sign: ${why || `status ${r.exitCode}`}`, { context: { module: label } });
    }
    return r.stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The module, the PKCS#7 blob, struct module_signature (id_type PKCS#7, the blob's length) and the magic. */
export function appendSignature(elf: Buffer, pkcs7: Buffer): Buffer {
  const info = Buffer.alloc(SIGNATURE_INFO_SIZE);
  info.writeUInt8(PKEY_ID_PKCS7, 2);
  info.writeUInt32BE(pkcs7.length, 8);
  return Buffer.concat([elf, pkcs7, info, SIGNATURE_MAGIC]);
}

/** compressed again as kfarm's driver and sign.sh compress (xz with CRC32: the kernel refuses CRC64) */
export async function compressModule(elf: Buffer, compression: ModuleCompression): Promise<Buffer> {
  const args: Record<Exclude<ModuleCompression, 'none'>, [string, string[]]> = {
    xz: ['xz', ['--check=crc32', '--lzma2=dict=1MiB', '-c']],
    gzip: ['gzip', ['-9', '-n', '-c']],
    zstd: ['zstd', ['-q', '-T0', '-c']],
  };
  if (compression === 'none') return elf;
  const [tool, toolArgs] = args[compression];
  const r = await execa(tool, toolArgs, { input: elf, encoding: 'buffer', stripFinalNewline: false, reject: false, timeout: 120_000, maxBuffer: 512 * 1024 * 1024 });
  if (r.exitCode !== 0) throw new KfarmError('COMMAND_FAILED', `${tool} failed compressing a signed module: ${Buffer.from(r.stderr).toString('utf8').trim() || r.shortMessage}`);
  return Buffer.from(r.stdout);
}
