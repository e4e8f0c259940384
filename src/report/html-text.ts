import { xmlChars } from './xml-text.js';

// bidi controls would make a line read differently than it is (src/util/clean-text.ts)
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** Pure: text for HTML element content or a double- or single-quoted attribute; control and bidi characters removed. */
export function htmlText(text: string): string {
  return xmlChars(text).replace(BIDI, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/**
 * Pure: a log's path relative to the out dir as a relative URL, or undefined when it is not a
 * plain relative path (a scheme, `..`, an absolute path): a report read back from disk must not
 * turn a link into `javascript:` or a path outside the out dir.
 */
export function safeHref(rel: string): string | undefined {
  const parts = rel.split('/');
  if (parts.some((p) => !/^[A-Za-z0-9._+~@=,-]+$/.test(p) || p === '.' || p === '..')) return undefined;
  return parts.map((p) => encodeURIComponent(p)).join('/');
}
