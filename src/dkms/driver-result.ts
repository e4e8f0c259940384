import { cleanText, TEXT_LIMITS } from '../util/clean-text.js';
import { isContainerReason, type Reason, type Verdict } from './verdicts.js';
import { isValidLocation, isValidName, quoteName } from './names.js';

/**
 * What the in-container driver (driver.sh) found: its `result` file is one fact per line,
 * tab-separated, so that bash never has to write JSON. Parsing is pure and tested on
 * recorded files.
 *
 * The file is written inside a container that runs the module's own scripts, so it is a
 * border: names that end up in host paths are checked here (a bad one makes the result a
 * `bad-conf` failure, never passes through), and free text is cleaned of control characters
 * and capped.
 */
export type { Verdict, Reason } from './verdicts.js';

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
  /** the built modules' file suffix: compressed as the target kernel's own modules are */
  moduleSuffix: ModuleSuffix;
}

export const MODULE_SUFFIXES = ['.ko', '.ko.xz', '.ko.zst', '.ko.gz'] as const;
export type ModuleSuffix = (typeof MODULE_SUFFIXES)[number];
const isModuleSuffix = (v: string): v is ModuleSuffix => (MODULE_SUFFIXES as readonly string[]).includes(v);

export function parseDriverResult(text: string): DriverResult {
  const result: DriverResult = {
    verdict: undefined,
    reason: undefined,
    message: undefined,
    packageName: undefined,
    packageVersion: undefined,
    failedStage: undefined,
    modules: [],
    makeCommand: undefined,
    makeInvocation: undefined,
    makeExit: undefined,
    exclusion: undefined,
    autoinstall: undefined,
    warnings: [],
    moduleSuffix: '.ko',
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
        // a word the list lacks is a broken driver, said as such (the list: dkms/verdicts.ts)
        result.reason = isContainerReason(value) ? value : 'driver-error';
        break;
      case 'message':
        result.message = cleanText(value, TEXT_LIMITS.message);
        break;
      case 'package_name':
        result.packageName = value === '' ? undefined : value;
        break;
      case 'package_version':
        result.packageVersion = value === '' ? undefined : value;
        break;
      case 'failed_stage':
        result.failedStage = value === 'add' || value === 'build' ? value : undefined;
        break;
      case 'make_command':
        result.makeCommand = cleanText(value, TEXT_LIMITS.line);
        break;
      case 'make_invocation':
        result.makeInvocation = cleanText(value, TEXT_LIMITS.line);
        break;
      case 'make_exit':
        result.makeExit = Number(value);
        break;
      case 'exclusion':
        result.exclusion = cleanText(value, TEXT_LIMITS.message);
        break;
      // anything else would be a file name the build picked: a broken driver, said as such
      case 'module_suffix':
        if (isModuleSuffix(value)) result.moduleSuffix = value;
        // names read so far have not been checked yet (refuseBadNames runs at the end): only usable ones go on
        else
          return {
            ...result,
            verdict: 'failed',
            reason: 'driver-error',
            message: 'the driver named an unknown module suffix',
            packageName: result.packageName !== undefined && isValidName('module name', result.packageName) ? result.packageName : undefined,
            packageVersion: result.packageVersion !== undefined && isValidName('module version', result.packageVersion) ? result.packageVersion : undefined,
            modules: [],
          };
        break;
      case 'autoinstall':
        result.autoinstall = cleanText(value, TEXT_LIMITS.line);
        break;
      case 'warning':
        if (result.warnings.length < MAX_WARNINGS) result.warnings.push(cleanText(value, TEXT_LIMITS.warning));
        break;
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
  return refuseBadNames(result);
}

/** More warnings than this is a build flooding the report, not dkms.conf talking. */
const MAX_WARNINGS = 20;

/**
 * The first name in the result that could not be a file name on the host, as the directive
 * dkms.conf set it and its value, quoted and escaped; undefined when every name is safe.
 */
export function badName(result: Pick<DriverResult, 'packageName' | 'packageVersion' | 'modules'>): string | undefined {
  const bad = (directive: string, value: string) => `${directive} ${quoteName(value)} is not a usable name`;
  if (result.packageName !== undefined && !isValidName('module name', result.packageName)) {
    return `${bad('PACKAGE_NAME', result.packageName)}: use letters, digits and _ . + - (at most 64, not starting with . or -)`;
  }
  if (result.packageVersion !== undefined && !isValidName('module version', result.packageVersion)) {
    return `${bad('PACKAGE_VERSION', result.packageVersion)}: use letters, digits and _ . + ~ : - (at most 64, not starting with . or -)`;
  }
  for (const m of result.modules) {
    const i = `[${m.index}]`;
    if (!isValidName('module name', m.builtName)) return `${bad(`BUILT_MODULE_NAME${i}`, m.builtName)}: a module name is letters, digits and _ . + -, without .ko`;
    if (!isValidName('module name', m.destName)) return `${bad(`DEST_MODULE_NAME${i}`, m.destName)}: a module name is letters, digits and _ . + -, without .ko`;
    const where: Array<[string, string]> = [
      [`BUILT_MODULE_LOCATION${i}`, m.builtLocation],
      [`DEST_MODULE_LOCATION${i}`, m.destLocation],
      [`DEST_MODULE_LOCATION${i} (as installed)`, m.installLocation],
    ];
    for (const [directive, value] of where) {
      if (!isSafeLocation(value)) return `${directive} ${quoteName(value)} is not a usable location: a path of name characters, without .. segments`;
    }
  }
  return undefined;
}

/** Locations are relative to the build dir or to /lib/modules/<kernel>: a leading / and ./ segments are how dkms.conf writes them. */
function isSafeLocation(value: string): boolean {
  const parts = value.split('/').filter((p) => p !== '' && p !== '.');
  return !value.includes('\\') && isValidLocation(parts.join('/'));
}

/**
 * A result with a bad name keeps nothing a name could travel in: no names, no modules; it is
 * a `bad-conf` failure saying which directive. A bad package name or version is bad on every
 * kernel (the `add` pass, as dkms add reads them), so the whole build stops as bad input.
 */
function refuseBadNames(result: DriverResult): DriverResult {
  const problem = badName(result);
  if (!problem) return result;
  const packageBad =
    (result.packageName !== undefined && !isValidName('module name', result.packageName)) ||
    (result.packageVersion !== undefined && !isValidName('module version', result.packageVersion));
  // dkms.conf already failed its checks (a missing directive leaves empty names): its own
  // error is the one to show; the names go all the same.
  const alreadyBadConf = result.verdict === 'failed' && result.reason === 'bad-conf' && result.message !== undefined;
  return {
    ...result,
    verdict: 'failed',
    reason: 'bad-conf',
    message: alreadyBadConf ? result.message : cleanText(problem, TEXT_LIMITS.message),
    packageName: packageBad ? undefined : result.packageName,
    packageVersion: packageBad ? undefined : result.packageVersion,
    failedStage: packageBad ? 'add' : (result.failedStage ?? 'build'),
    modules: [],
  };
}

/**
 * The module's name and version from a build's log, for a build cut short before the driver
 * wrote its result (a timeout, a kill): the log still shows how far it got. The driver says
 * `[kfarm] module NAME/VERSION (...)` once `dkms add` has read them; older drivers say it only
 * in the path of the build dir DKMS uses, `/var/lib/dkms/NAME/VERSION/build`, on the line
 * that names the clean or make command (the default ones hold it). The first such line
 * counts. The log is the build's to write, so a name is taken only if it is a usable one;
 * it came from the module's own dkms.conf either way.
 */
export function identityFromLog(log: string): { packageName: string; packageVersion: string } | undefined {
  for (const line of log.split('\n')) {
    const said =
      /^\[kfarm\] module ([^/\s]+)\/([^/\s]+)(?: |$)/.exec(line) ??
      /^\[kfarm\] (?:cleaning build area|building): .*?\/var\/lib\/dkms\/([^/\s]+)\/([^/\s]+)\/build(?:[\s/]|$)/.exec(line);
    if (!said) continue;
    const [, name = '', version = ''] = said;
    return isValidName('module name', name) && isValidName('module version', version) ? { packageName: name, packageVersion: version } : undefined;
  }
  return undefined;
}
