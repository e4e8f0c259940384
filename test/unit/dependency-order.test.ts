import { describe, expect, it } from 'vitest';
import { dependencyWaves, readDependsHint } from '../../src/coordinator/dependency-order.js';

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
  it('cuts a cycle: its modules share one wave and get nothing from each other; what waits on them comes after', () => {
    // dkms build of 2.8.4/3.0.10 builds each (BUILD_DEPENDS does not stop it), 3.2.2 fails each: the driver decides, per kernel
    const { waves, depends, cycles, outside } = dependencyWaves([src('a', 'a', ['b']), src('b', 'b', ['a']), src('c', 'c'), src('d', 'd', ['a'])]);
    expect(waves).toEqual([[2], [0, 1], [3]]);
    expect(depends).toEqual([[], [], [], [0]]);
    expect(cycles).toEqual([0, 1]);
    expect(outside).toEqual([[], [], [], []]);
  });
  it('a module that depends on itself is a cycle of one', () => {
    const { waves, depends, cycles } = dependencyWaves([src('s', 'self', ['self'])]);
    expect(waves).toEqual([[0]]);
    expect(depends).toEqual([[]]);
    expect(cycles).toEqual([0]);
  });
  it('a dependency no source of the run provides is not refused: it is listed, and the source builds in the first wave it can', () => {
    const { waves, depends, outside } = dependencyWaves([src('u', 'user', ['nowhere', 'base']), src('b', 'base')]);
    expect(waves).toEqual([[1], [0]]);
    expect(depends).toEqual([[1], []]);
    expect(outside).toEqual([['nowhere'], []]);
  });
});
