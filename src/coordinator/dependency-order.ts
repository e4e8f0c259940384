import { KfarmError } from '../errors/kfarm-error.js';

/**
 * BUILD_DEPENDS across the sources of one `kfarm build`, as `dkms autoinstall` orders them on a
 * host (2.8.4, 3.0.10 and 3.2.2 alike: a module is built once every module named in its
 * BUILD_DEPENDS is installed; one whose dependency failed is not built).
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
 * dependencies are all in earlier waves; each entry is an index into `sources`, and `depends`
 * gives each source's dependencies as indexes. A dependency no source of the run provides,
 * and a cycle, are refused before anything is built (exit 2): kfarm could only build such a
 * module without its dependency's symbols, which DKMS ≥ 3.1.4 refuses too (`dkms build` exit
 * 13), and `dkms autoinstall` of every release leaves a cycle unbuilt (exit 11).
 */
export function dependencyWaves(sources: readonly SourceDepends[]): { waves: number[][]; depends: number[][] } {
  const byName = new Map<string, number>();
  sources.forEach((s, i) => {
    if (s.hint.name !== undefined) byName.set(s.hint.name, i);
  });
  const depends = sources.map((s) =>
    [...new Set(s.hint.depends)].map((dep) => {
      const at = byName.get(dep);
      if (at === undefined) {
        const known = [...byName.keys()];
        throw new KfarmError('DKMS_CONF_INVALID', `${s.dir}: BUILD_DEPENDS names ${dep}, which no source of this build provides`, {
          context: { source: s.dir, dependency: dep, modules: known.join(' ') },
          hint:
            `Add ${dep}'s source to the same command (kfarm build <${dep}-source> ${s.dir}): its Module.symvers is built with it, as ` +
            `\`dkms autoinstall\` builds it first on a host.${known.length ? ` This build's modules: ${known.join(', ')}.` : ''}`,
        });
      }
      return at;
    }),
  );
  const waves: number[][] = [];
  const placed = new Set<number>();
  while (placed.size < sources.length) {
    const wave = sources.map((_, i) => i).filter((i) => !placed.has(i) && (depends[i] ?? []).every((d) => placed.has(d)));
    if (wave.length === 0) {
      const stuck = sources.flatMap((s, i) => (placed.has(i) ? [] : [s.hint.name ?? s.dir]));
      throw new KfarmError('DKMS_CONF_INVALID', `BUILD_DEPENDS form a cycle among ${stuck.join(', ')}: none of them can be built first`, {
        context: { modules: stuck.join(' ') },
        hint: 'Remove the BUILD_DEPENDS entry that points back; `dkms autoinstall` leaves such modules unbuilt too.',
      });
    }
    wave.forEach((i) => placed.add(i));
    waves.push(wave);
  }
  return { waves, depends };
}

/** The dependency's result on one kernel, as the dependent's job needs it. */
export interface DependencyOutcome {
  name: string;
  /** absent: the dependency had no job on this kernel in this run (`--kernels new` found nothing new for it) */
  verdict: 'built' | 'excluded' | 'failed' | 'absent';
  reason: string | undefined;
}

/** Why a dependent cannot be built on this kernel (a dependency failed or was excluded there), or undefined. */
export function missingDependency(outcomes: readonly DependencyOutcome[]): string | undefined {
  const missing = outcomes.filter((o) => o.verdict !== 'built');
  if (missing.length === 0) return undefined;
  const what = missing.map((o) => `${o.name} (${o.verdict === 'failed' ? `failed: ${o.reason ?? 'unknown'}` : o.verdict === 'excluded' ? 'excluded' : 'not built in this run'})`);
  return `BUILD_DEPENDS not built on this kernel: ${what.join(', ')}; DKMS would not build this module here either`;
}
