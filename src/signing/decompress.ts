import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import { KfarmError } from '../errors/kfarm-error.js';
import type { ModuleCompression } from './module-files.js';

/** No kernel module comes near this uncompressed; a larger result is a bomb. */
export const MAX_MODULE_BYTES = 256 * 1024 * 1024;

/** A module's ELF bytes, decompressed on this host (xz and zstd with their own tools, capped). */
export async function decompressModule(data: Buffer, compression: ModuleCompression, label: string): Promise<Buffer> {
  try {
    switch (compression) {
      case 'none':
        return data;
      case 'gzip':
        return gunzipSync(data, { maxOutputLength: MAX_MODULE_BYTES });
      case 'xz':
      case 'zstd': {
        const tool = compression === 'xz' ? 'xz' : 'zstd';
        const result = await execa(tool, ['-dc'], { input: data, encoding: 'buffer', stripFinalNewline: false, maxBuffer: MAX_MODULE_BYTES, reject: false, timeout: 120_000 });
        if (result.exitCode !== 0) throw new Error(`${tool} -dc: ${Buffer.from(result.stderr).toString('utf8').trim() || result.shortMessage}`);
        return Buffer.from(result.stdout);
      }
    }
  } catch (err) {
    throw new KfarmError('UNSAFE_ARCHIVE', `${label}: cannot decompress it as ${compression}: ${(err as Error).message}`, {
      context: { module: label },
      hint:
        compression === 'zstd' || compression === 'xz'
          ? `Is ${compression} installed on this host (\`apt-get install ${compression === 'xz' ? 'xz-utils' : 'zstd'}\`)?`
          : undefined,
    });
  }
}
