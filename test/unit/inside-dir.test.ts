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
    // Each one must be kfarm's own UNSAFE_ARCHIVE refusal naming the joined parts: any other
    // error (a TypeError, a different code) or no error at all is a failure.
    const cases: string[][] = [['logs', '../../../x.log'], ['..'], ['logs', 'a/b.log'], ['/etc/passwd'], ['x\0.log'], [''], ['.'], ['a\\b'], ['logs', '..'], ['logs', '']];
    for (const parts of cases) {
      expect(refused(...parts), JSON.stringify(parts)).toBe(`refused to write ${JSON.stringify(parts.join('/'))}: it is not a file inside ${out}`);
    }
  });
});
