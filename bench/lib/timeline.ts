/**
 * Pure: where a `kfarm build` process's wall time went, from its pino log lines (info level):
 * set-up before the first container, the tail after the last job, and each container's
 * phases (src/executor/docker-runtime.ts PhaseClock) summed: `run` is the build itself, the
 * others are what a container adds.
 */
export interface Timeline {
  setupS: number;
  tailS: number;
  jobs: number;
  /** seconds summed over the jobs, per phase */
  phases: Record<string, number>;
  /** seconds summed over the jobs: the worker's whole job minus the build and the slot wait ('job done') */
  workerS: number;
}

export function timelineOf(stderr: string, startedAtMs: number, endedAtMs: number): Timeline {
  const lines = stderr.split('\n').flatMap((l) => {
    if (!l.startsWith('{')) return [];
    try {
      return [JSON.parse(l) as { time?: number; msg?: string; phases?: Record<string, number>; jobMs?: number; buildMs?: number; waitMs?: number }];
    } catch {
      return [];
    }
  });
  const starts = lines.filter((l) => l.msg === 'container starting' && typeof l.time === 'number').map((l) => l.time as number);
  const dones = lines.filter((l) => l.msg === 'job done' && typeof l.time === 'number').map((l) => l.time as number);
  const phases: Record<string, number> = {};
  let jobs = 0;
  for (const l of lines) {
    if (l.msg !== 'container ended' || !l.phases) continue;
    jobs++;
    for (const [name, ms] of Object.entries(l.phases)) if (typeof ms === 'number') phases[name] = (phases[name] ?? 0) + ms / 1000;
  }
  const workerS = lines.filter((l) => l.msg === 'job done' && typeof l.jobMs === 'number').reduce((a, l) => a + ((l.jobMs as number) - (l.buildMs ?? 0) - (l.waitMs ?? 0)) / 1000, 0);
  return {
    workerS,
    setupS: starts.length ? (Math.min(...starts) - startedAtMs) / 1000 : Number.NaN,
    tailS: dones.length ? (endedAtMs - Math.max(...dones)) / 1000 : Number.NaN,
    jobs,
    phases,
  };
}

/** "set-up 0.8 s, tail 0.2 s; 3 containers: create 0.3, start 0.3, ... (run 9.1) s" */
export function timelineLine(t: Timeline): string {
  // run is the build; ready is a prepared container waiting for a compile slot while others compile
  const own = Object.entries(t.phases).filter(([n]) => n !== 'run' && n !== 'ready');
  const sum = own.reduce((a, [, s]) => a + s, 0);
  return `set-up ${t.setupS.toFixed(2)} s, tail ${t.tailS.toFixed(2)} s; ${t.jobs} containers: ${own.map(([n, s]) => `${n} ${s.toFixed(2)}`).join(', ')} = ${sum.toFixed(2)} s; whole jobs minus builds ${t.workerS.toFixed(2)} s (builds: run ${(t.phases.run ?? 0).toFixed(2)} s${t.phases.ready ? `; prepared ahead, waiting ${t.phases.ready.toFixed(2)} s` : ''})`;
}
