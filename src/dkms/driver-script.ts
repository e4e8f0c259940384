import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { packageRoot } from '../paths.js';

/**
 * The bash driver ships as src/dkms/driver.sh and is copied into every build container, so
 * images never need rebuilding when the driver changes. Its hash is part of every job id:
 * a new driver never reuses an old driver's results.
 */
let cached: { script: Buffer; sha256: string } | undefined;

export function driverScript(): { script: Buffer; sha256: string } {
  if (!cached) {
    const script = readFileSync(path.join(packageRoot, 'src', 'dkms', 'driver.sh'));
    cached = { script, sha256: createHash('sha256').update(script).digest('hex') };
  }
  return cached;
}
