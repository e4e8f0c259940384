import { describe, expect, it } from 'vitest';
import { dependencyWaves, missingDependency, readDependsHint } from '../../src/coordinator/dependency-order.js';
import { isKfarmError } from '../../src/errors/kfarm-error.js';

describe('readDependsHint (text only, nothing executed)', () => {
  it('reads literal PACKAGE_NAME and BUILD_DEPENDS[i], quoted or not, in index order', () => {
    const conf = 'PACKAGE_NAME="user"\nBUILD_DEPENDS[1]=b\r\nBUILD_DEPENDS[0]=\'a\'  # base\nPACKAGE_VERSION=1\n';
    expect(readDependsHint(conf)).toEqual({ name: 'user', depends: ['a', 'b'] });
  });
  it('ignores what only bash could tell (expansions, substitutions)', () => {
    expect(readDependsHint('PACKAGE_NAME=$(cat name)\nBUILD_DEPENDS[0]="${DEP}"\n')).toEqual({ name: undefined, depends: [] });
  });
});

const src = (dir: string, name: string, depends: string[] = []) => ({ dir, hint: { name, depends } });

describe('dependencyWaves', () => {
  it('puts dependencies in earlier waves', () => {
    const { waves, depends } = dependencyWaves([src('u', 'user', ['base']), src('x', 'other'), src('b', 'base')]);
    expect(waves).toEqual([[1, 2], [0]]);
    expect(depends).toEqual([[2], [], []]);
  });
  it('refuses a cycle (exit 2 code) naming the modules', () => {
    let err: unknown;
    try {
      dependencyWaves([src('a', 'a', ['b']), src('b', 'b', ['a']), src('c', 'c')]);
    } catch (e) {
      err = e;
    }
    expect(isKfarmError(err, 'DKMS_CONF_INVALID')).toBe(true);
    expect((err as Error).message).toMatch(/cycle among a, b/);
  });
  it('refuses a dependency that no source of the run provides', () => {
    expect(() => dependencyWaves([src('u', 'user', ['nowhere'])])).toThrow(/BUILD_DEPENDS names nowhere, which no source of this build provides/);
  });
});

describe('missingDependency', () => {
  it('names the dependencies that failed or were excluded', () => {
    expect(missingDependency([{ name: 'a', verdict: 'built', reason: undefined }])).toBeUndefined();
    expect(missingDependency([{ name: 'a', verdict: 'absent', reason: undefined }])).toMatch(/a \(not built in this run\)/);
    expect(missingDependency([{ name: 'a', verdict: 'failed', reason: 'make-failed' }, { name: 'b', verdict: 'excluded', reason: undefined }])).toBe(
      'BUILD_DEPENDS not built on this kernel: a (failed: make-failed), b (excluded); DKMS would not build this module here either',
    );
  });
});
