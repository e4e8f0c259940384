import { describe, expect, it } from 'vitest';
import { defaultDebian12Kernels, parseHeaderPackages } from '../../src/matrix/debian-kernels.js';

/** Kernel names of every release's amd64 ABI shapes, as `apt-cache pkgnames linux-headers-` lists them. */
const PKGNAMES = [
  'linux-headers-5.10.0-46-amd64',
  'linux-headers-5.10.0-46-cloud-amd64',
  'linux-headers-5.10.0-46-rt-amd64',
  'linux-headers-5.10.0-46-common',
  'linux-headers-6.1.0-0.deb11.52-amd64',
  'linux-headers-6.1.0-0.deb11.52-common',
  'linux-headers-6.1.0-57-amd64',
  'linux-headers-6.12.117+deb12-amd64',
  'linux-headers-6.12.115+deb13-amd64',
  'linux-headers-6.12.115+deb13.1-amd64',
  'linux-headers-6.12.115+deb13.1-rt-amd64',
  'linux-headers-7.3.4+deb13-cloud-amd64',
  'linux-headers-7.3.4+deb13-common',
  'linux-headers-6.12-amd64',
  'linux-headers-amd64',
  'linux-headers-6.1.0-57-arm64',
].join('\n');

describe('parseHeaderPackages over every release', () => {
  it('keeps each amd64 ABI (5.10, 6.1 deb11, 6.1, 6.12+debN, point uploads +debN.M, 7.x), not metapackages, -common or other arches', () => {
    expect(parseHeaderPackages(PKGNAMES)).toEqual([
      '5.10.0-46-amd64',
      '5.10.0-46-cloud-amd64',
      '5.10.0-46-rt-amd64',
      '6.1.0-0.deb11.52-amd64',
      '6.1.0-57-amd64',
      '6.12.115+deb13-amd64',
      '6.12.115+deb13.1-amd64',
      '6.12.115+deb13.1-rt-amd64',
      '6.12.117+deb12-amd64',
      '7.3.4+deb13-cloud-amd64',
    ]);
  });

  it('takes a point upload as the newest 6.12 of the default set', () => {
    expect(defaultDebian12Kernels(['6.1.0-56-amd64', '6.1.0-57-amd64', '6.12.117+deb12-amd64', '6.12.117+deb12.1-amd64', '6.12.117+deb12.1-rt-amd64'])).toEqual([
      '6.1.0-56-amd64',
      '6.1.0-57-amd64',
      '6.12.117+deb12.1-amd64',
    ]);
  });
});
