import { createHash } from 'node:crypto';
import { KfarmError } from '../../errors/kfarm-error.js';

/**
 * Pure: what the dashboard's pages share about where they live and what they may load. The
 * base is the path a reverse proxy mounts kfarm serve under ('' at the root, '/kfarm' below
 * one); it goes into links and the script's fetch, so only plain path segments are allowed.
 */
export function pageBase(base: string | undefined): string {
  const trimmed = (base ?? '').replace(/\/+$/, '');
  if (trimmed !== '' && !/^(?:\/[A-Za-z0-9._~-]+)+$/.test(trimmed))
    throw new KfarmError('BAD_OPTION', `the dashboard's base path ${JSON.stringify(base)} is not a plain path`, {
      hint: "give '' or a path like /kfarm (letters, digits, . _ ~ -)",
    });
  return trimmed;
}

/** The CSP source of an inline script or style: its sha256, base64, as a header names it. */
export function cspHash(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}
