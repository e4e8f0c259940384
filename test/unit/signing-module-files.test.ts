import { describe, expect, it } from 'vitest';
import { checkModuleFileNames, compressedFormatProblem, moduleCompression } from '../../src/signing/module-files.js';

describe('module file names for signing', () => {
  it('reads the compression from the suffix dkms gives the file', () => {
    expect(moduleCompression('hello.ko')).toBe('none');
    expect(moduleCompression('hello.ko.xz')).toBe('xz');
    expect(moduleCompression('hello.ko.gz')).toBe('gzip');
    expect(moduleCompression('my_mod-2+x.ko.zst')).toBe('zstd');
  });

  it('refuses paths, hidden names, odd characters and files that are no module', () => {
    for (const name of ['../hello.ko', 'sub/hello.ko', '.ko', '.hidden.ko', 'he llo.ko', 'hello.ko;rm', 'hello.o', 'hello.ko.bz2', '', '-']) {
      expect(() => moduleCompression(name), name).toThrow(/cannot sign/);
    }
  });

  it('refuses the same name twice', () => {
    expect(() => checkModuleFileNames(['a.ko', 'b.ko.xz', 'a.ko'])).toThrow(/two modules named a\.ko/);
    expect([...checkModuleFileNames(['a.ko', 'b.ko.xz']).entries()]).toEqual([
      ['a.ko', 'none'],
      ['b.ko.xz', 'xz'],
    ]);
  });

  it('checks that compressed data is what its name says, and xz uses CRC32', () => {
    const xzHeader = (check: number) => Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, check, 0, 0, 0, 0]);
    expect(compressedFormatProblem(xzHeader(0x01), 'xz')).toBeUndefined();
    expect(compressedFormatProblem(xzHeader(0x04), 'xz')).toMatch(/CRC32/);
    expect(compressedFormatProblem(Buffer.from([0x1f, 0x8b, 8]), 'gzip')).toBeUndefined();
    expect(compressedFormatProblem(Buffer.from([0x1f, 0x8b, 8]), 'xz')).toMatch(/not xz/);
    expect(compressedFormatProblem(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), 'zstd')).toBeUndefined();
    expect(compressedFormatProblem(Buffer.from('hello'), 'zstd')).toMatch(/not zstd/);
  });
});
