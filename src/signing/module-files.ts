import { KfarmError } from '../errors/kfarm-error.js';

/**
 * Module file names as kfarm hands them out (`hello.ko`, `hello.ko.xz`) and how each is
 * compressed. Pure. The names travel into a container and back, so only plain names pass.
 */
export type ModuleCompression = 'none' | 'xz' | 'gzip' | 'zstd';

const SUFFIXES: ReadonlyArray<[string, ModuleCompression]> = [
  ['.ko.xz', 'xz'],
  ['.ko.gz', 'gzip'],
  ['.ko.zst', 'zstd'],
  ['.ko', 'none'],
];

/** letters, digits, `_ - + .`, no leading dot: what dkms names a module file */
const PLAIN_NAME = /^[A-Za-z0-9_+-][A-Za-z0-9_.+-]{0,200}$/;

export function moduleCompression(fileName: string): ModuleCompression {
  if (!PLAIN_NAME.test(fileName)) {
    throw new KfarmError('BAD_OPTION', `cannot sign ${JSON.stringify(fileName)}: not a plain module file name`, {
      context: { module: fileName },
      hint: 'Module names hold letters, digits, _, -, + and dots, and no directory.',
    });
  }
  const found = SUFFIXES.find(([suffix]) => fileName.endsWith(suffix) && fileName.length > suffix.length);
  if (!found) {
    throw new KfarmError('BAD_OPTION', `cannot sign ${fileName}: not a kernel module (.ko, .ko.xz, .ko.gz or .ko.zst)`, { context: { module: fileName } });
  }
  return found[1];
}

/** Checks every name and that none repeats; returns each one's compression. */
export function checkModuleFileNames(names: readonly string[]): Map<string, ModuleCompression> {
  const out = new Map<string, ModuleCompression>();
  for (const name of names) {
    if (out.has(name)) throw new KfarmError('BAD_OPTION', `cannot sign two modules named ${name} for one kernel`, { context: { module: name } });
    out.set(name, moduleCompression(name));
  }
  return out;
}

/** Does the compressed file start as its suffix says? xz must use CRC32: the kernel's decompressor refuses CRC64. */
export function compressedFormatProblem(data: Buffer, compression: ModuleCompression): string | undefined {
  const starts = (bytes: number[]) => data.length >= bytes.length && data.subarray(0, bytes.length).equals(Buffer.from(bytes));
  switch (compression) {
    case 'none':
      return undefined;
    case 'xz':
      if (!starts([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'is not xz data';
      // stream flags: byte 6 is zero, the low nibble of byte 7 the check type (1 = CRC32)
      return data[6] === 0 && data[7] === 0x01 ? undefined : 'is xz without a CRC32 check (the kernel refuses CRC64)';
    case 'gzip':
      return starts([0x1f, 0x8b]) ? undefined : 'is not gzip data';
    case 'zstd':
      return starts([0x28, 0xb5, 0x2f, 0xfd]) ? undefined : 'is not zstd data';
  }
}
