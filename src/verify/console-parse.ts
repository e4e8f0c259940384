import { cleanText, TEXT_LIMITS } from '../util/clean-text.js';
import type { LoadReport, Lockdown } from '../job/verify-job.js';

/**
 * What a guest's serial console says about one boot. Pure; the console is untrusted text (the
 * module under test runs in that kernel), so only lines carrying this boot's nonce count as
 * init's markers, and every quoted line is cleaned and capped.
 */
export interface BootOutcome {
  verdict: LoadReport['verdict'];
  reason?: string;
  firstError?: string;
  bootMs?: number;
  loadMs?: number;
  /** per module in load order: insmod's exit status (undefined: it never returned) */
  results: Array<{ module: string; status: number | undefined }>;
  /** Secure Boot boots: the firmware's SecureBoot variable as the guest read it (or, without efivarfs, the kernel's "Secure boot enabled") */
  secureBoot?: boolean;
  lockdown?: Lockdown;
}

/** How the container's script ended (its own stdout, which the guest cannot write). */
export type BootStatus = 'ran' | 'timeout' | 'no-kernel-image' | 'no-modules' | 'no-firmware' | 'boot-failed';

/** Kernel log lines that say why a module was refused, most specific first; reason words are stable. */
const REFUSALS: ReadonlyArray<{ reason: string; pattern: RegExp }> = [
  // the kernel's line tells the two apart; insmod says "Key was rejected by service" for both
  { reason: 'unsigned-rejected', pattern: /Loading of unsigned module is rejected/i },
  { reason: 'key-rejected', pattern: /Loading of module with unavailable key is rejected|Key was rejected by service|Required key not available/i },
  { reason: 'version-magic', pattern: /version magic '[^']*' should be '|disagrees about version of symbol|no symbol version for/i },
  { reason: 'unknown-symbol', pattern: /Unknown symbol|unknown symbol in module/i },
  { reason: 'invalid-format', pattern: /Invalid module format|invalid ELF header|module has bad taint|exec format error/i },
  { reason: 'crashed', pattern: /Kernel panic - not syncing|BUG: |Oops: |general protection fault/ },
];

const TIMESTAMP = /^\[\s*\d+\.\d+\]\s*/;

/** The first line of the console that explains a refusal, with its reason word: the kernel's own lines first, then insmod's. */
export function firstRefusal(lines: readonly string[]): { reason: string; line: string } | undefined {
  return refusalIn(lines.filter((l) => TIMESTAMP.test(l))) ?? refusalIn(lines);
}

function refusalIn(lines: readonly string[]): { reason: string; line: string } | undefined {
  for (const line of lines) {
    for (const r of REFUSALS) {
      if (r.pattern.test(line)) return { reason: r.reason, line: cleanText(line.replace(TIMESTAMP, '').trim(), TEXT_LIMITS.firstError) };
    }
  }
  return undefined;
}

/**
 * Init's marker lines are short (a module name and a number or two). The marker regex is
 * unanchored and tried from every `@@kfarm-<nonce>` in a line, so a line of thousands of them
 * would cost its length squared: a longer line is the kernel's (or a hostile module's), never init's.
 */
const MARKER_LINE_MAX = 2048;

export function parseConsole(text: string, nonce: string, status: BootStatus, opts: { secureBoot?: boolean } = {}): BootOutcome {
  if (status === 'no-kernel-image' || status === 'no-modules' || status === 'no-firmware') return { verdict: 'not-verified', reason: status, results: [] };
  // a kernel line can land in the middle of one of init's (both write the console): split there
  const lines = text.replace(/\r/g, '').split(/\n|(?=\[\s*\d+\.\d{6}\] )/);
  const marker = new RegExp(`@@kfarm-${nonce} (boot|secureboot|insmod|result|done)((?: [^ ]+)*)\\s*$`);
  let bootAt: number | undefined;
  let secure: { secureBoot: boolean; lockdown: Lockdown } | undefined;
  let doneAt: number | undefined;
  let firstInsmodAt: number | undefined;
  const results: BootOutcome['results'] = [];
  // the console from the first insmod on: what the kernel said about the modules
  const loadLines: string[] = [];
  // the script's own lines (kfarm-verify: booting: ... oops=panic) are not the kernel's
  const kernelLines: string[] = [];
  for (const line of lines) {
    const m = line.length <= MARKER_LINE_MAX ? marker.exec(line) : null;
    if (!m) {
      if (line.startsWith('kfarm-verify: ')) continue;
      kernelLines.push(line);
      if (firstInsmodAt !== undefined || results.length > 0) loadLines.push(line);
      continue;
    }
    const args = (m[2] ?? '').trim().split(' ');
    const seconds = (s: string | undefined) => (s !== undefined && /^\d+(\.\d+)?$/.test(s) ? Math.round(Number(s) * 1000) : undefined);
    switch (m[1]) {
      case 'boot':
        bootAt ??= seconds(args[0]);
        break;
      case 'secureboot':
        // init's own line, before any module loads: `<SecureBoot variable: 0|1|none> <lockdown word|none> <kernel said "Secure boot enabled": 0|1>`
        if (secure || results.length > 0) break;
        secure = {
          secureBoot: args[0] === '1' || (args[0] === 'none' && args[2] === '1'),
          lockdown: args[1] === 'integrity' || args[1] === 'confidentiality' ? args[1] : 'none',
        };
        break;
      case 'insmod':
        firstInsmodAt ??= seconds(args[1]);
        results.push({ module: cleanText(args[0] ?? '', 256), status: undefined });
        break;
      case 'result': {
        const entry = results.find((r) => r.module === cleanText(args[0] ?? '', 256) && r.status === undefined);
        if (entry && /^\d{1,3}$/.test(args[1] ?? '')) entry.status = Number(args[1]);
        break;
      }
      case 'done':
        doneAt ??= seconds(args[0]);
        break;
    }
  }
  const timing = {
    ...(bootAt !== undefined ? { bootMs: bootAt } : {}),
    ...(firstInsmodAt !== undefined && doneAt !== undefined ? { loadMs: Math.max(0, doneAt - firstInsmodAt) } : {}),
  };
  const refusal = firstRefusal(bootAt === undefined ? kernelLines : loadLines);
  if (opts.secureBoot && bootAt !== undefined) {
    // the proof is a load under Secure Boot with lockdown: a guest that did not see both verified nothing
    if (!secure || !secure.secureBoot || secure.lockdown === 'none') {
      const seen = secure ? `SecureBoot ${secure.secureBoot ? 'on' : 'off'}, lockdown ${secure.lockdown}` : 'no Secure Boot report from init';
      return {
        verdict: 'not-verified',
        reason: 'secure-boot-off',
        firstError: `the guest booted without Secure Boot and lockdown (${seen})`,
        ...timing,
        results,
        ...(secure ?? {}),
      };
    }
    return { ...outcome(refusal, bootAt, doneAt, status, timing, results), ...secure };
  }
  return outcome(refusal, bootAt, doneAt, status, timing, results);
}

function outcome(
  refusal: { reason: string; line: string } | undefined,
  bootAt: number | undefined,
  doneAt: number | undefined,
  status: BootStatus,
  timing: { bootMs?: number; loadMs?: number },
  results: BootOutcome['results'],
): BootOutcome {
  if (bootAt === undefined) {
    // the kernel never reached init: nothing of the module ran, so nothing was verified
    return { verdict: 'not-verified', reason: status === 'timeout' ? 'timeout' : 'boot-failed', ...(refusal ? { firstError: refusal.line } : {}), results };
  }
  const failed = results.find((r) => r.status !== undefined && r.status !== 0);
  if (failed)
    return {
      verdict: 'load-failed',
      reason: refusal?.reason ?? 'insmod-failed',
      firstError: refusal?.line ?? `insmod ${failed.module} exited with ${failed.status}`,
      ...timing,
      results,
    };
  if (doneAt === undefined || results.some((r) => r.status === undefined) || results.length === 0) {
    // init started but did not finish loading: the module hung or crashed the guest
    const reason = refusal?.reason === 'crashed' ? 'crashed' : status === 'timeout' ? 'timeout' : 'crashed';
    return { verdict: 'load-failed', reason, ...(refusal ? { firstError: refusal.line } : {}), ...timing, results };
  }
  return { verdict: 'loaded', ...timing, results };
}
