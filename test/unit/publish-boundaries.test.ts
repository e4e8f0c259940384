import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';

/**
 * The repository key is used on the publishing host only: gpg and rpmsign run there as child
 * processes. What keeps the key out of containers is that the publishers cannot start one:
 * nothing under src/publish/ reaches the container runtime (the executor's port or its Docker
 * implementation). A publisher that needs a container must be argued for in docs/security.md.
 */
const dir = path.join(packageRoot, 'src', 'publish');
const RUNTIME = [/executor\/(docker-)?runtime(\.js)?['"]/, /\bContainerRuntime\b/, /\brunIsolated\b/, /\brunHelper\b/, /\bdockerode\b/];

describe('the publishers and containers', () => {
  it('nothing under src/publish/ can start a container: no import of the runtime, no ContainerRuntime', () => {
    const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(10);
    // code only: a comment may name what the publishers do not use
    const code = (f: string) =>
      readFileSync(path.join(dir, f), 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/^\s*\/\/.*$/gm, '');
    const reaching = files.filter((f) => RUNTIME.some((re) => re.test(code(f))));
    expect(reaching).toEqual([]);
  });
});
