import { describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import { fromSystemError } from '../../src/errors/system-error.js';

const sysErr = (code: string, file?: string) => Object.assign(new Error(`${code}: failed`), { code, ...(file ? { path: file } : {}) });

describe('file system conditions are the environment (exit 3) with what to do, not a bug', () => {
  it('ENOSPC names the file and says how to get room', () => {
    const err = fromSystemError(sysErr('ENOSPC'), '/mnt/small/out/hello.dkms.tar.gz');
    expect(err?.code).toBe('FILE_SYSTEM');
    expect(exitCodeFor(err?.code ?? 'BAD_OPTION')).toBe(3);
    expect(err?.message).toBe('no space left on the device writing /mnt/small/out/hello.dkms.tar.gz (ENOSPC)');
    expect(err?.hint).toContain('df -h /mnt/small/out');
  });

  it('EDQUOT and EROFS too; the path the error carries when the writer gave none; found through cause', () => {
    expect(fromSystemError(sysErr('EDQUOT', '/home/u/out/x'))?.message).toBe('disk quota exceeded writing /home/u/out/x (EDQUOT)');
    expect(fromSystemError(sysErr('EROFS', '/ro/out'))?.message).toBe('read-only file system writing /ro/out (EROFS)');
    expect(fromSystemError(new Error('wrapped', { cause: sysErr('ENOSPC') }))?.code).toBe('FILE_SYSTEM');
  });

  it('anything else stays unexpected', () => {
    expect(fromSystemError(sysErr('EBADF'))).toBeUndefined();
    expect(fromSystemError(new SyntaxError('x'))).toBeUndefined();
    expect(fromSystemError('ENOSPC')).toBeUndefined();
  });
});
