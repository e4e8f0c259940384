import { mkdtemp, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import { packSource } from '../../src/source/source-archive.js';

/**
 * A module source is a stranger's tree: packSource caps the bytes it reads of it in all, by
 * the sizes lstat gives as it walks (and each file again once read).
 */
describe('packSource caps what it reads of a module source', () => {
  it('a source whose files add up to more than 256 MiB is SOURCE_TOO_LARGE (exit 2), though each file is under it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kfarm-src-limit-'));
    await writeFile(path.join(dir, 'dkms.conf'), 'PACKAGE_NAME="big"\nPACKAGE_VERSION="1"\nBUILT_MODULE_NAME[0]="big"\nDEST_MODULE_LOCATION[0]="/extra"\n');
    // sparse: 2 x 130 MiB that take no disk
    for (const name of ['a.bin', 'b.bin']) {
      await writeFile(path.join(dir, name), '');
      await truncate(path.join(dir, name), 130 * 1024 * 1024);
    }
    const err = await packSource(dir).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'SOURCE_TOO_LARGE', message: `${dir} holds more than 256 MiB` });
    expect(exitCodeFor('SOURCE_TOO_LARGE')).toBe(2);
  });

  it('a source under the cap is packed', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kfarm-src-limit-'));
    await writeFile(path.join(dir, 'dkms.conf'), 'PACKAGE_NAME="small"\nPACKAGE_VERSION="1"\nBUILT_MODULE_NAME[0]="small"\nDEST_MODULE_LOCATION[0]="/extra"\n');
    await writeFile(path.join(dir, 'blob.bin'), Buffer.alloc(1024 * 1024));
    const packed = await packSource(dir);
    expect(packed.files).toBe(2);
  });
});
