/**
 * BUILD_DEPENDS across the sources of one `kfarm build`: dependencies first, as `dkms
 * autoinstall` orders them on a host. Whether a dependent builds on a kernel where a dependency
 * is not there (not a source of the run, failed or excluded there, or on a cycle) is not decided
 * here but in the build container, by the kernel's release, as its `dkms build` decides: 2.8.4
 * and 3.0.10 build it anyway, 3.2.2 fails it (driver.sh check_build_depends; docs/dkms-releases.md).
 *
 * Where kfarm learns BUILD_DEPENDS: only evaluating dkms.conf (bash) tells for sure, and that
 * happens in a build container. Before any container runs, the coordinator reads dkms.conf on
 * the host **as text only** (`readDependsHint`: literal `PACKAGE_NAME=` and `BUILD_DEPENDS[i]=`
 * assignments, nothing executed) to decide the order of waves. That is a scheduling hint, not
 * the truth: a BUILD_DEPENDS that only bash can compute is not seen here (the driver's own
 * `build_depends` facts are to be checked against the hint once it reports them).
 *
 * How a dependent gets its dependency's symbols: no DKMS release passes KBUILD_EXTRA_SYMBOLS or
 * anything else; the dependent's Makefile (or MAKE[]) names the file itself. DKMS >= 3.1.3 keeps
 * each build's Module.symvers at `$dkms_tree/<dep>/<version>/<kernel>/<arch>/module/Module.symvers`
 * (3.2.2, trixie); 2.8.4 and 3.0.10 delete the build dir after a build and keep none, so their
 * vendors copy it into that same `$dkms_tree/<dep>/<version>/<kernel>/<arch>/` tree in the
 * dependency's POST_BUILD (ZFS's SPL did). kfarm therefore hands the dependent the Module.symvers
 * its dependency's job wrote, at the >= 3.1.3 path, for every release: where a vendor's Makefile
 * looks on a host. (A dependency's own POST_BUILD copy elsewhere is lost: it ran in another container.)
 */
export interface DependsHint {
  /** PACKAGE_NAME as dkms.conf writes it literally; undefined when it is computed */
  name: string | undefined;
  /** BUILD_DEPENDS entries written literally */
  depends: string[];
}

const PLAIN = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}$/;
/** `NAME=value`, `NAME="value"`, `NAME='value'`, optionally `NAME[i]=`, alone on its line (a trailing comment allowed) */
const ASSIGNMENT = /^\s*(PACKAGE_NAME|BUILD_DEPENDS)(?:\[\s*(\d+)\s*\])?=(?:"([^"$`\\]*)"|'([^']*)'|([^\s"'$`\\;#]*))\s*(?:#.*)?$/;

/** Pure, never executes anything: literal assignments only; the last one of a name or index wins, as in bash. */
export function readDependsHint(dkmsConf: string): DependsHint {
  let name: string | undefined;
  const depends = new Map<number, string>();
  for (const line of dkmsConf.replace(/\r$/gm, '').split('\n')) {
    const m = ASSIGNMENT.exec(line);
    if (!m) continue;
    const value = m[3] ?? m[4] ?? m[5] ?? '';
    if (m[1] === 'PACKAGE_NAME') name = PLAIN.test(value) ? value : undefined;
    else if (value === '') depends.delete(Number(m[2] ?? 0));
    else depends.set(Number(m[2] ?? 0), value);
  }
  return { name, depends: [...depends.entries()].sort(([a], [b]) => a - b).map(([, v]) => v) };
}

export interface SourceDepends {
  /** the source directory as given on the command line */
  dir: string;
  hint: DependsHint;
}

/**
 * The waves of a run: wave 0 holds the sources without BUILD_DEPENDS, wave n those whose
 * dependencies are all in earlier waves; each entry is an index into `sources`. `depends`
 * gives, per source, the dependencies it gets (indexes of sources in earlier waves): their
 * Module.symvers on each kernel where they built.
 *
 * Nothing here is refused: BUILD_DEPENDS does not stop `dkms build` on 2.8.4 and 3.0.10 (only
 * `dkms autoinstall` reads it, for its order), and 3.2.2 stops a build per kernel when a
 * dependency is not installed for that kernel. So a dependency no source of the run provides
 * (`outside`) is simply not handed over, and the driver does what the kernel's release does
 * (driver.sh check_build_depends: builds with a warning naming it, or fails
 * `missing-dependency`). A cycle is cut: its modules go in one wave and get nothing from each
 * other (each one's dependency is not built yet when it builds, as on a host), `cycles` lists them.
 */
export function dependencyWaves(sources: readonly SourceDepends[]): { waves: number[][]; depends: number[][]; outside: string[][]; cycles: number[] } {
  const byName = new Map<string, number>();
  sources.forEach((s, i) => {
    if (s.hint.name !== undefined) byName.set(s.hint.name, i);
  });
  const wanted = sources.map((s) => [...new Set(s.hint.depends)].flatMap((dep) => (byName.has(dep) ? [byName.get(dep) as number] : [])));
  const outside = sources.map((s) => [...new Set(s.hint.depends)].filter((dep) => !byName.has(dep)));
  const waves: number[][] = [];
  const placed = new Set<number>();
  const cycles: number[] = [];
  while (placed.size < sources.length) {
    const left = sources.map((_, i) => i).filter((i) => !placed.has(i));
    let wave = left.filter((i) => (wanted[i] ?? []).every((d) => placed.has(d)));
    if (wave.length === 0) {
      // stuck: only cycles (and what waits on them) are left; the modules on a cycle go now
      wave = left.filter((i) => reachesItself(i, wanted, placed));
      cycles.push(...wave);
    }
    waves.push(wave);
    wave.forEach((i) => placed.add(i));
  }
  // what each source gets: dependencies of earlier waves only (a cycle's members get nothing from each other)
  const waveOf = new Map(waves.flatMap((w, n) => w.map((i) => [i, n] as const)));
  const depends = wanted.map((ds, i) => ds.filter((d) => (waveOf.get(d) ?? 0) < (waveOf.get(i) ?? 0)));
  return { waves, depends, outside, cycles: cycles.sort((a, b) => a - b) };
}

/** true when `start` depends, through sources not placed yet, on itself */
function reachesItself(start: number, wanted: readonly number[][], placed: ReadonlySet<number>): boolean {
  const seen = new Set<number>();
  const todo = [...(wanted[start] ?? [])];
  while (todo.length > 0) {
    const i = todo.pop() as number;
    if (i === start) return true;
    if (placed.has(i) || seen.has(i)) continue;
    seen.add(i);
    todo.push(...(wanted[i] ?? []));
  }
  return false;
}
