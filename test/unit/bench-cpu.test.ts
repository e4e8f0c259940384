import { describe, expect, it } from 'vitest';
import { cpuAccount, cpuLine, parsePidStat, parseProcStat, parseTimeOutput, procDeltaS, sumAccounts } from '../../bench/lib/cpu-account.js';
import { scheduleBound } from '../../bench/lib/schedule-bound.js';

// recorded on the bench machine (2 vCPUs, CLK_TCK 100)
const procStat = `cpu  2068060 393 1443937 5422450 110332 0 44509 2622 15 0
cpu0 996042 181 661654 2845678 34240 0 3344 1322 7 0
cpu1 1072017 211 782283 2576772 76091 0 41164 1300 8 0
intr 137033555 0 0 0
ctxt 452361842
`;
const dockerdStat =
  '16222 (dockerd) S 1 16222 16222 0 -1 4194560 57375 338297 16 13 490 357 113 107 20 0 14 0 4534568 1797500928 25823 18446744073709551615 94270809419776 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0';

describe('bench CPU accounting', () => {
  it('reads busy, idle and steal from the aggregate cpu line of /proc/stat, not a per-core one', () => {
    expect(parseProcStat(procStat)).toEqual({ busy: 2068060 + 393 + 1443937 + 0 + 44509, idle: 5422450 + 110332, steal: 2622 });
    expect(parseProcStat('cpu0 1 2 3 4\n')).toBeUndefined();
  });

  it("reads a process's own and waited children's ticks and its start time from /proc/<pid>/stat", () => {
    expect(parsePidStat(dockerdStat)).toEqual({ pid: 16222, comm: 'dockerd', startTime: 4534568, cpu: 490 + 357 + 113 + 107 });
  });

  it('finds the fields after a comm that holds spaces and parentheses', () => {
    const odd = dockerdStat.replace('(dockerd)', '(a) b (c))');
    expect(parsePidStat(odd)).toMatchObject({ comm: 'a) b (c)', cpu: 1067, startTime: 4534568 });
    expect(parsePidStat('16222 (dockerd) S 1 2')).toBeUndefined();
  });

  it('gives no delta for a process that restarted between the samples', () => {
    const before = { pid: 1, comm: 'dockerd', startTime: 10, cpu: 100 };
    expect(procDeltaS(before, { ...before, cpu: 237 }, 100)).toBeCloseTo(1.37);
    expect(procDeltaS(before, { ...before, startTime: 11, cpu: 237 }, 100)).toBeNaN();
    expect(procDeltaS(before, undefined, 100)).toBeNaN();
  });

  it('reads user + sys from /usr/bin/time -f "%U %S", after any warning line', () => {
    expect(parseTimeOutput('Command exited with non-zero status 1\n3.91 0.52\n')).toBeCloseTo(4.43);
    expect(parseTimeOutput('')).toBeUndefined();
  });

  it('leaves for the containers what the host was busy with minus the processes it can name', () => {
    const a = cpuAccount({
      hostBefore: { busy: 1000, idle: 500, steal: 0 },
      hostAfter: { busy: 12070, idle: 1000, steal: 0 },
      hz: 100,
      kfarmS: 4.4,
      dockerdS: 1.37,
      containerdS: 0.61,
      benchS: 0.02,
    });
    expect(a.busyS).toBeCloseTo(110.7);
    expect(a.idleS).toBeCloseTo(5);
    expect(a.containersS).toBeCloseTo(110.7 - 4.4 - 1.37 - 0.61 - 0.02);
    expect(cpuLine(a, { dkmsCpuS: 97.5, bareCpuS: 93.3, cores: 2 })).toBe(
      'busy 110.7 s (kfarm process 4.4, dockerd 1.4, containerd 0.6, containers 104.3 = 1.07 x dkms CPU, 1.12 x bare make CPU), idle 5.0 s (2.5 s of wall on 2 cores)',
    );
  });

  it("keeps an unmeasured daemon's share in the rest and says it was not measured", () => {
    const a = cpuAccount({
      hostBefore: { busy: 0, idle: 0, steal: 0 },
      hostAfter: { busy: 1000, idle: 0, steal: 30 },
      hz: 100,
      kfarmS: 1,
      dockerdS: Number.NaN,
      containerdS: 0.5,
      benchS: 0.1,
    });
    expect(a.containersS).toBeCloseTo(8.4);
    expect(cpuLine(a, { cores: 2 })).toBe(
      'busy 10.0 s (kfarm process 1.0, dockerd ?, containerd 0.5, this bench 0.1, containers 8.4), idle 0.0 s (0.0 s of wall on 2 cores), stolen by the hypervisor 0.3 s',
    );
  });

  it('sums the accounts of several calls field by field', () => {
    const one = cpuAccount({
      hostBefore: { busy: 0, idle: 0, steal: 0 },
      hostAfter: { busy: 500, idle: 100, steal: 0 },
      hz: 100,
      kfarmS: 1,
      dockerdS: 0.2,
      containerdS: 0.1,
      benchS: 0,
    });
    const two = sumAccounts([one, one]);
    expect(two.busyS).toBeCloseTo(10);
    expect(two.idleS).toBeCloseTo(2);
    expect(two.kfarmS).toBeCloseTo(2);
    expect(two.containersS).toBeCloseTo(7.4);
  });
});

describe('best possible schedule', () => {
  const cell = (call: string, cpuS: number, wallS: number) => ({ call, cpuS, wallS });

  it('cannot end a call before its longest cell, however many cores', () => {
    // one 6 s serial cell beside two 1 s cells: 8 CPU-s / 2 cores = 4 s, but the long cell takes 6
    expect(scheduleBound([cell('m', 6, 6), cell('m', 1, 1), cell('m', 1, 1)], 2)).toBeCloseTo(6);
  });

  it('cannot end a call before its CPU spread over the cores', () => {
    expect(scheduleBound([cell('m', 4, 4), cell('m', 4, 4), cell('m', 4, 4)], 2)).toBeCloseTo(6);
  });

  it('sums the calls, which run one after the other, and one call over all cells is never longer', () => {
    const cells = [cell('a', 6, 6), cell('a', 1, 1), cell('a', 1, 1), cell('b', 1, 1), cell('b', 1, 1), cell('b', 6, 6)];
    expect(scheduleBound(cells, 2)).toBeCloseTo(12);
    expect(
      scheduleBound(
        cells.map((c) => ({ ...c, call: 'all' })),
        2,
      ),
    ).toBeCloseTo(8);
  });

  it('is zero for no cells', () => {
    expect(scheduleBound([], 2)).toBe(0);
  });
});
