import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { insideDir } from '../../src/util/inside-dir.js';

const out = '/tmp/kfarm-out';
const refused = (...parts: string[]) => {
  try {
    insideDir(out, ...parts);
  } catch (err) {
    return isKfarmError(err, 'UNSAFE_ARCHIVE') ? (err as Error).message : `wrong error: ${String(err)}`;
  }
  return 'not refused';
};

describe('insideDir: a host path made of names never leaves --out', () => {
  it('joins plain names', () => {
    expect(insideDir(out, 'logs', '6.1.0-56-amd64.log')).toBe(path.join(out, 'logs', '6.1.0-56-amd64.log'));
    expect(insideDir(out, 'hello-1.0-kernel6.12.117+deb12-amd64-x86_64.dkms.tar.gz')).toBe(`${out}/hello-1.0-kernel6.12.117+deb12-amd64-x86_64.dkms.tar.gz`);
  });

  it('refuses .., a slash, an absolute name, NUL and empty names, saying which', () => {
    expect(refused('logs', '../../../x.log')).toContain('"logs/../../../x.log"');
    expect(refused('..')).not.toBe('not refused');
    expect(refused('logs', 'a/b.log')).not.toBe('not refused');
    expect(refused('/etc/passwd')).not.toBe('not refused');
    expect(refused('x\0.log')).not.toBe('not refused');
    expect(refused('')).not.toBe('not refused');
    expect(refused('.')).not.toBe('not refused');
    expect(refused('a\\b')).not.toBe('not refused');
  });
});
