import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (where package.json is), from source (src/) or compiled (lib/src/). */
function findRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('kfarm package root not found');
    dir = parent;
  }
  return dir;
}

export const packageRoot = findRoot();
export const imagesDir = path.join(packageRoot, 'images');
