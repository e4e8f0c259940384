/**
 * Text that came out of a build (messages, first error lines, warnings, log excerpts) is
 * printed to terminals and written to report.json. A Makefile can put anything in it: escape
 * sequences that recolour, move the cursor or retitle the terminal, NULs, bidi overrides that
 * make a line read differently than it is, or megabytes on one line. cleanText keeps the
 * printable text and drops the rest; pure, so it can run at every border.
 */

/** How long each kind of text may be once cleaned (characters). */
export const TEXT_LIMITS = {
  message: 2000,
  firstError: 1000,
  warning: 2000,
  /** make command lines, worker names and other one-line facts */
  line: 4096,
} as const;

// ESC-introduced sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), DCS/SOS/PM/APC
// (ESC P|X|^|_ ... ST), and the two-byte escapes (ESC + one char). The 8-bit CSI (0x9b) too.
const ESCAPES = new RegExp(
  [
    '\\u001b\\[[0-?]*[ -/]*[@-~]',
    '\\u001b\\][^\\u0007\\u001b]*(?:\\u0007|\\u001b\\\\)?',
    '\\u001b[PX^_][^\\u001b]*(?:\\u001b\\\\)?',
    '\\u001b[ -/]*[0-~]',
    '\\u009b[0-?]*[ -/]*[@-~]',
  ].join('|'),
  'g',
);
// C0 except \t and \n (handled apart), DEL, C1, and the Unicode bidi controls.
// eslint-disable-next-line no-control-regex -- matching control characters is what this is for
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export interface CleanOptions {
  /** keep line breaks (multi-line text such as a hint); otherwise they become spaces */
  newlines?: boolean;
}

/**
 * Printable text only, at most `max` characters: escape sequences and control characters
 * removed, tabs as spaces, line breaks kept only when asked, a cut marked with `…`.
 */
export function cleanText(text: string, max: number, options: CleanOptions = {}): string {
  let out = text.replace(/\r\n?/g, '\n').replace(ESCAPES, '').replace(/\t/g, ' ').replace(CONTROLS, '');
  if (!options.newlines) out = out.replace(/\n/g, ' ');
  if (out.length <= max) return out;
  if (max <= 0) return '';
  let cut = max - 1;
  // never split a surrogate pair: half a character is not printable text either
  const code = out.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut--;
  return `${out.slice(0, cut)}…`;
}
