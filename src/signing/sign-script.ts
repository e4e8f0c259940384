import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../paths.js';

/** Where the signing container unpacks its input: a tmpfs only the signer's user can read. */
export const SIGN_WORKDIR = '/kfarm-sign';

let cached: string | undefined;

/** src/signing/sign.sh, run as `bash -c` text: nothing is copied into the read-only image. */
export function signScript(): string {
  cached ??= readFileSync(path.join(packageRoot, 'src', 'signing', 'sign.sh'), 'utf8');
  return cached;
}
