/**
 * Pure: the shortest wall time any scheduler could reach for a set of `kfarm build` calls run one
 * after the other. A call cannot end before its cells' CPU spread over every core, nor before its
 * longest cell alone (a kbuild of one module is nearly serial: more cores do not shorten it). For
 * preemptive scheduling of serial tasks this is also reachable (McNaughton), so it is the best
 * possible schedule, not only a bound.
 */
export interface CellCost {
  /** the call the cell belongs to: its module for one call per module, one name for one call */
  call: string;
  /** CPU seconds of its compile */
  cpuS: number;
  /** wall seconds of its compile alone on the machine */
  wallS: number;
}

/** sum over calls of max(cells' CPU / cores, longest cell's wall) */
export function scheduleBound(cells: readonly CellCost[], cores: number): number {
  const calls = new Map<string, { cpuS: number; longestS: number }>();
  for (const c of cells) {
    const call = calls.get(c.call) ?? { cpuS: 0, longestS: 0 };
    calls.set(c.call, { cpuS: call.cpuS + c.cpuS, longestS: Math.max(call.longestS, c.wallS) });
  }
  return [...calls.values()].reduce((a, c) => a + Math.max(c.cpuS / cores, c.longestS), 0);
}
