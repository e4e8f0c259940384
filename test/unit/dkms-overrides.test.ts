import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readDkmsOverrides } from '../../src/config/dkms-overrides.js';

const dirWith = async (files: Record<string, string>) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'kfarm-overrides-'));
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  return dir;
};

describe('--dkms-overrides', () => {
  it('reads the *.conf files, sorted, and ignores the rest', async () => {
    const dir = await dirWith({ 'hello.conf': 'STRIP[0]=no\n', 'hello-1.0.conf': 'X=1\n', README: 'notes' });
    expect(await readDkmsOverrides(dir)).toEqual([
      { name: 'hello-1.0.conf', text: 'X=1\n' },
      { name: 'hello.conf', text: 'STRIP[0]=no\n' },
    ]);
  });

  it('refuses a missing dir, an empty one, a link, a bad name and a big file, saying which', async () => {
    await expect(readDkmsOverrides('/nonexistent/overrides')).rejects.toThrow(/no such directory/);
    await expect(readDkmsOverrides(await dirWith({ README: 'x' }))).rejects.toThrow(/holds no \*\.conf file/);
    const linked = await dirWith({});
    await symlink('/etc/hostname', path.join(linked, 'hello.conf'));
    await expect(readDkmsOverrides(linked)).rejects.toThrow(/hello\.conf is not a regular file/);
    await expect(readDkmsOverrides(await dirWith({ '-x.conf': '' }))).rejects.toThrow(/not a name dkms would read/);
    await expect(readDkmsOverrides(await dirWith({ 'big.conf': 'x'.repeat(70_000) }))).rejects.toThrow(/more than 65536/);
    const nested = await dirWith({});
    await mkdir(path.join(nested, 'dir.conf'));
    await expect(readDkmsOverrides(nested)).rejects.toThrow(/dir\.conf is not a regular file/);
  });
});
