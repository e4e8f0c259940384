import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { packageRoot } from '../../src/paths.js';

/** The bash scripts the harness runs in containers, read from the source tree (tsc does not copy them to lib/). */
export const containerScript = (name: 'oracle.sh' | 'download.sh') => readFile(path.join(packageRoot, 'bench', 'conformance', name), 'utf8');
