/**
 * Pure: the oracle container's marker lines (`@@...`, written by ORACLE_SCRIPT) → per module and
 * kernel what the release's real dkms did. Everything here came out of a container: names are
 * checked against a plain file-name pattern, numbers parsed strictly, unknown lines ignored.
 */
export type Verdict = 'built' | 'excluded' | 'failed';

export interface OracleCell {
  kernel: string;
  /** exit code of `dkms build -k <kernel>` */
  buildExit: number;
  verdict: Verdict;
  /** `ls /var/lib/dkms/<m>/<v>/<kernel>/<arch>/module/` */
  files: string[];
  /** exit code of `dkms install --force`, when it was run */
  installExit: number | undefined;
  /** what install wrote below /lib/modules/<kernel>/, relative to it */
  destinations: string[];
  /** the last lines of make.log and of dkms's own output, for a failure */
  log: string[];
}

export interface OracleModule {
  id: string;
  name: string;
  version: string;
  addExit: number;
  cells: OracleCell[];
  log: string[];
}

export interface OracleRun {
  dkmsVersion: string;
  modules: OracleModule[];
  /** the script reached its end marker */
  complete: boolean;
}

/**
 * exit 0 built, 77 excluded (BUILD_EXCLUSIVE_*), anything else failed: as `dkms autoinstall`
 * reads them. dkms 2.x said "excluded" with exit 9 (prepare_build's `die 9`).
 */
export function verdictOfExit(code: number, dkmsVersion = ''): Verdict {
  const excluded = dkmsVersion.startsWith('2.') ? code === 9 : code === 77;
  return code === 0 ? 'built' : excluded ? 'excluded' : 'failed';
}

const NAME = /^[A-Za-z0-9_.+~:@-]+$/;
const MODULE_FILE = /\.ko(?:\.(?:xz|gz|zst))?$/;
const REL_PATH = /^(?!\/)(?!.*(?:^|\/)\.\.(?:\/|$))[A-Za-z0-9_.+~:@/-]+$/;

export function parseOracleOutput(output: string): OracleRun {
  const run: OracleRun = { dkmsVersion: '', modules: [], complete: false };
  const modules = new Map<string, OracleModule>();
  const cellOf = (id: string, kernel: string): OracleCell | undefined => modules.get(id)?.cells.find((c) => c.kernel === kernel);
  let current: { id: string; kernel: string | undefined } | undefined;
  for (const raw of output.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (!line.startsWith('@@')) continue;
    const [tag = '', ...rest] = line.slice(2).split(' ');
    const int = (s: string | undefined) => (s !== undefined && /^-?\d+$/.test(s) ? Number(s) : undefined);
    switch (tag) {
      case 'dkms':
        run.dkmsVersion = rest[0] ?? '';
        break;
      case 'module': {
        const [id, name, version] = rest;
        if (id && name && version && NAME.test(id) && NAME.test(name) && NAME.test(version)) {
          modules.set(id, { id, name, version, addExit: -1, cells: [], log: [] });
          current = { id, kernel: undefined };
        }
        break;
      }
      case 'add': {
        const m = modules.get(rest[0] ?? '');
        const code = int(rest[1]);
        if (m && code !== undefined) m.addExit = code;
        break;
      }
      case 'build': {
        const [id = '', kernel = ''] = rest;
        const code = int(rest[2]);
        const m = modules.get(id);
        if (m && NAME.test(kernel) && code !== undefined) {
          m.cells.push({ kernel, buildExit: code, verdict: verdictOfExit(code, run.dkmsVersion), files: [], installExit: undefined, destinations: [], log: [] });
          current = { id, kernel };
        }
        break;
      }
      case 'built': {
        const cell = cellOf(rest[0] ?? '', rest[1] ?? '');
        const file = rest.slice(2).join(' ');
        // dkms 3.2.x also keeps Module.symvers there (for BUILD_DEPENDS): not a module file
        if (cell && NAME.test(file) && MODULE_FILE.test(file)) cell.files.push(file);
        break;
      }
      case 'install': {
        const cell = cellOf(rest[0] ?? '', rest[1] ?? '');
        const code = int(rest[2]);
        if (cell && code !== undefined) cell.installExit = code;
        break;
      }
      case 'dest': {
        const cell = cellOf(rest[0] ?? '', rest[1] ?? '');
        const dest = rest.slice(2).join(' ');
        if (cell && REL_PATH.test(dest)) cell.destinations.push(dest);
        break;
      }
      case 'log': {
        const text = rest.join(' ').slice(0, 300);
        if (current) {
          const cell = current.kernel ? cellOf(current.id, current.kernel) : undefined;
          (cell ?? modules.get(current.id))?.log.push(text);
        }
        break;
      }
      case 'end':
        run.complete = true;
        break;
      default:
        break;
    }
  }
  run.modules = [...modules.values()];
  for (const m of run.modules) {
    for (const c of m.cells) {
      c.files.sort();
      c.destinations.sort();
    }
  }
  return run;
}
