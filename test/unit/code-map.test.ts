import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';

/**
 * The code map in docs/architecture.md is prose a reader trusts, so it is checked against the
 * tree: every folder of src/ has its row, no row names a folder that is gone, and each external
 * system (Docker, BullMQ, Redis, child processes) comes in only through the files the map names
 * as its doors. The README once said process/run.ts was the only execa importer while three
 * other files imported it; this test is what keeps that from happening again.
 */

const root = packageRoot;
const mapFile = path.join(root, 'docs/architecture.md');
const GUARDED = ['dockerode', 'bullmq', 'ioredis', 'execa'] as const;
type Guarded = (typeof GUARDED)[number];

interface CodeMap {
  folders: string[];
  doors: Map<string, { doors: string[]; typeUsers: string[] }>;
}

/** The markdown between a heading and the next heading of the same or a higher level. */
function section(markdown: string, heading: string): string {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => l.trim() === heading);
  if (start < 0) throw new Error(`docs/architecture.md has no "${heading}" heading`);
  const level = heading.indexOf(' ');
  const end = lines.findIndex((l, i) => i > start && /^#+ /.test(l) && l.indexOf(' ') <= level);
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n');
}

const backticked = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

/** Pure: the folder rows and the doors table of the code map. */
function parseCodeMap(markdown: string): CodeMap {
  const map = section(markdown, '## Code map');
  const folders = [...map.matchAll(/^\| `(src\/[^`]*)` \|/gm)].map((m) => m[1]!.replace(/\/$/, ''));
  const doors = new Map<string, { doors: string[]; typeUsers: string[] }>();
  for (const line of section(map, '### One door per external system').split('\n')) {
    const cells = line.split('|').slice(1, -1);
    const pkg = cells[0]?.trim().match(/^`([^`]+)`$/)?.[1];
    if (!pkg || cells.length < 3) continue;
    doors.set(pkg, { doors: backticked(cells[1]!), typeUsers: backticked(cells[2]!) });
  }
  return { folders, doors };
}

interface FoundImport {
  pkg: Guarded;
  typeOnly: boolean;
}

/** Pure: which guarded packages a TypeScript source imports (statically, dynamically or by require), and whether only for types. */
function guardedImports(source: string): FoundImport[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1');
  const found: FoundImport[] = [];
  const add = (specifier: string, typeOnly: boolean) => {
    const pkg = GUARDED.find((p) => specifier === p || specifier.startsWith(`${p}/`));
    if (pkg) found.push({ pkg, typeOnly });
  };
  for (const m of code.matchAll(/^\s*(?:import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm)) add(m[2]!, Boolean(m[1]));
  for (const m of code.matchAll(/\b(?:import|require)\s*\(\s*['"]([^'"]+)['"]\s*\)/g)) add(m[1]!, false);
  return found;
}

function walk(dir: string): { dirs: string[]; files: string[] } {
  const dirs: string[] = [];
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      dirs.push(full);
      const below = walk(full);
      dirs.push(...below.dirs);
      files.push(...below.files);
    } else if (entry.name.endsWith('.ts')) files.push(full);
  }
  return { dirs, files };
}

const rel = (p: string) => path.relative(root, p).split(path.sep).join('/');

describe('the code map checker', () => {
  it('tells type-only imports from imports that load code, in every form', () => {
    const src = [
      "import type { Redis } from 'ioredis';",
      "import { execa } from 'execa';",
      'import {\n  Queue,\n  type Job,\n} from "bullmq";',
      "const D = await import('dockerode');",
      "// import('execa') in a comment loads nothing",
      "const url = 'http://x'; // import { y } from 'bullmq'",
      "import { something } from './ioredis-helper.js';",
    ].join('\n');
    expect(guardedImports(src)).toEqual([
      { pkg: 'ioredis', typeOnly: true },
      { pkg: 'execa', typeOnly: false },
      { pkg: 'bullmq', typeOnly: false },
      { pkg: 'dockerode', typeOnly: false },
    ]);
  });

  it('reads the folder rows and the doors table, and only those', () => {
    const md = [
      '# x',
      '## Code map',
      '| folder | what |',
      '|---|---|',
      '| `src/` | root |',
      '| `src/a/` | a |',
      '| `src/a/b/` | b |',
      'prose naming `src/c/` is not a row',
      '### One door per external system',
      '| package | doors | type-only users |',
      '|---|---|---|',
      '| `execa` | `src/a/run.ts`, `src/a/b/x.ts` | |',
      '| `ioredis` | `src/a/r.ts` | `src/a/t.ts` |',
      '## Next section',
      '| `src/z/` | not in the map |',
    ].join('\n');
    const map = parseCodeMap(md);
    expect(map.folders).toEqual(['src', 'src/a', 'src/a/b']);
    expect(map.doors.get('execa')).toEqual({ doors: ['src/a/run.ts', 'src/a/b/x.ts'], typeUsers: [] });
    expect(map.doors.get('ioredis')).toEqual({ doors: ['src/a/r.ts'], typeUsers: ['src/a/t.ts'] });
  });
});

describe('docs/architecture.md code map against src/', () => {
  const map = parseCodeMap(readFileSync(mapFile, 'utf8'));
  const tree = walk(path.join(root, 'src'));
  const folders = tree.dirs.map(rel);

  it('has a row for every folder of src/', () => {
    expect(folders.filter((f) => !map.folders.includes(f))).toEqual([]);
  });

  it('names no folder that is not in src/', () => {
    expect(map.folders.filter((f) => f !== 'src' && !folders.includes(f))).toEqual([]);
  });

  it('names a door (or type-only user) for every file that imports dockerode, bullmq, ioredis or execa', () => {
    const outside: string[] = [];
    const importers = new Map<string, Set<string>>(); // `${pkg} ${file}`
    for (const file of tree.files) {
      for (const { pkg, typeOnly } of guardedImports(readFileSync(file, 'utf8'))) {
        const entry = map.doors.get(pkg);
        const allowed = typeOnly ? [...(entry?.doors ?? []), ...(entry?.typeUsers ?? [])] : (entry?.doors ?? []);
        if (!allowed.includes(rel(file))) outside.push(`${rel(file)} imports ${pkg}${typeOnly ? ' (types only)' : ''} but the map does not name it`);
        if (!importers.has(pkg)) importers.set(pkg, new Set());
        importers.get(pkg)!.add(rel(file));
      }
    }
    expect(outside).toEqual([]);
    // and the map says nothing the code does not: every named file exists and imports its package
    const stale: string[] = [];
    for (const pkg of GUARDED) {
      const entry = map.doors.get(pkg);
      if (!entry) {
        stale.push(`no row for ${pkg}`);
        continue;
      }
      for (const file of [...entry.doors, ...entry.typeUsers]) {
        if (!importers.get(pkg)?.has(file)) stale.push(`${file} is named for ${pkg} but does not import it`);
      }
    }
    expect(stale).toEqual([]);
  });
});
