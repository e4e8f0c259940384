import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { KfarmError } from '../errors/kfarm-error.js';

/**
 * The host's `openssl`, with secrets only ever on stdin or in the child's environment (never
 * its arguments, which `ps` shows). Never prompts: every call that may meet an encrypted key
 * names its -passin.
 */
export interface OpensslResult {
  exitCode: number;
  stdout: Buffer;
  stderr: string;
}

export async function openssl(args: readonly string[], options: { input?: Buffer; env?: Record<string, string> } = {}): Promise<OpensslResult> {
  const result = await execa('openssl', args, {
    input: options.input ?? Buffer.alloc(0),
    encoding: 'buffer',
    stripFinalNewline: false,
    reject: false,
    timeout: 60_000,
    maxBuffer: 16 * 1024 * 1024,
    ...(options.env ? { env: options.env } : {}),
  });
  if (result.exitCode === undefined) {
    throw new KfarmError('COMMAND_FAILED', `openssl could not run: ${result.shortMessage}`, {
      hint: 'Install it (`apt-get install openssl`): kfarm checks signing keys and signatures with it.',
    });
  }
  return { exitCode: result.exitCode, stdout: Buffer.from(result.stdout), stderr: Buffer.from(result.stderr).toString('utf8').trim() };
}

/**
 * `openssl cms -verify` of a module's PKCS#7 signature over its content against one
 * certificate (-nointern: only that one; -noverify: a self-signed signing cert has no chain
 * to check). True when the signature is good.
 */
export async function verifyPkcs7(content: Buffer, pkcs7: Buffer, certPem: Buffer): Promise<{ ok: boolean; output: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kfarm-verify-'));
  try {
    const files = { content: path.join(dir, 'content'), sig: path.join(dir, 'sig.p7'), cert: path.join(dir, 'cert.pem') };
    await Promise.all([writeFile(files.content, content), writeFile(files.sig, pkcs7), writeFile(files.cert, certPem)]);
    const r = await openssl([
      'cms',
      '-verify',
      '-binary',
      '-inform',
      'DER',
      '-in',
      files.sig,
      '-content',
      files.content,
      '-certfile',
      files.cert,
      '-nointern',
      '-noverify',
      '-out',
      '/dev/null',
    ]);
    return { ok: r.exitCode === 0, output: r.stderr };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
