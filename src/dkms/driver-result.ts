/**
 * What the in-container driver (driver.sh) found: its `result` file is one fact per line,
 * tab-separated, so that bash never has to write JSON. Parsing is pure and tested on
 * recorded files.
 */
export type Verdict = 'built' | 'excluded' | 'failed';

/** Why a kernel failed or was excluded; stable strings, used in report.json. */
export type Reason =
  | 'bad-conf'
  | 'build-exclusive'
  | 'missing-headers'
  | 'patch-missing'
  | 'patch-failed'
  | 'make-failed'
  | 'missing-module'
  | 'timeout'
  | 'disk-full'
  | 'output-too-large'
  | 'unsafe-output'
  | 'driver-error'
  | 'killed';

export interface ModuleSpec {
  index: number;
  /** BUILT_MODULE_NAME, without .ko */
  builtName: string;
  /** BUILT_MODULE_LOCATION, relative to the build dir, with a trailing / when set */
  builtLocation: string;
  /** DEST_MODULE_NAME: the file name stored and installed, without .ko */
  destName: string;
  /** DEST_MODULE_LOCATION as dkms.conf says it */
  destLocation: string;
  /** where this distro's dkms really installs it (Debian: /updates/dkms), below /lib/modules/<k> */
  installLocation: string;
  strip: boolean;
}

export interface DriverResult {
  verdict: Verdict | undefined;
  reason: Reason | undefined;
  message: string | undefined;
  packageName: string | undefined;
  packageVersion: string | undefined;
  /** bad-conf: which pass over dkms.conf failed; `add` is the module's fault, not the kernel's */
  failedStage: 'add' | 'build' | undefined;
  modules: ModuleSpec[];
  /** MAKE as dkms.conf resolved it for this kernel */
  makeCommand: string | undefined;
  /** the command line really run (dkms adds -jN KERNELRELEASE=...) */
  makeInvocation: string | undefined;
  makeExit: number | undefined;
  exclusion: string | undefined;
  autoinstall: string | undefined;
  /** things DKMS would accept silently but a person should know (a syntax error in dkms.conf) */
  warnings: string[];
}

const REASONS: ReadonlySet<string> = new Set<Reason>([
  'bad-conf', 'build-exclusive', 'missing-headers', 'patch-missing', 'patch-failed', 'make-failed',
  'missing-module', 'timeout', 'disk-full', 'output-too-large', 'unsafe-output', 'driver-error', 'killed',
]);

export function parseDriverResult(text: string): DriverResult {
  const result: DriverResult = {
    verdict: undefined, reason: undefined, message: undefined, packageName: undefined,
    packageVersion: undefined, failedStage: undefined, modules: [], makeCommand: undefined, makeInvocation: undefined,
    makeExit: undefined, exclusion: undefined, autoinstall: undefined, warnings: [],
  };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [key, ...values] = line.split('\t');
    const value = values.join('\t');
    switch (key) {
      case 'verdict':
        if (value === 'built' || value === 'excluded' || value === 'failed') result.verdict = value;
        break;
      case 'reason':
        result.reason = REASONS.has(value) ? (value as Reason) : 'driver-error';
        break;
      case 'message': result.message = value; break;
      case 'package_name': result.packageName = value; break;
      case 'package_version': result.packageVersion = value; break;
      case 'failed_stage': result.failedStage = value === 'add' || value === 'build' ? value : undefined; break;
      case 'make_command': result.makeCommand = value; break;
      case 'make_invocation': result.makeInvocation = value; break;
      case 'make_exit': result.makeExit = Number(value); break;
      case 'exclusion': result.exclusion = value; break;
      case 'autoinstall': result.autoinstall = value; break;
      case 'warning': result.warnings.push(value); break;
      case 'module': {
        const [index, builtName, builtLocation, destName, destLocation, installLocation, strip] = values;
        result.modules.push({
          index: Number(index),
          builtName: builtName ?? '',
          builtLocation: builtLocation ?? '',
          destName: destName ?? '',
          destLocation: destLocation ?? '',
          installLocation: installLocation ?? '',
          strip: strip !== 'no',
        });
        break;
      }
      default:
        break; // newer drivers may add facts; older parsers ignore them
    }
  }
  return result;
}
