import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';

/**
 * The folder layers of src/ live in .dependency-cruiser.cjs, and scripts/test.sh runs the cruiser
 * on src/. A check that passes proves nothing if its rules cannot fire (a regular expression
 * that matches no path passes every tree), so this runs the same config, through the same CLI,
 * on a small tree holding one instance of each kind of violation, and on allowed imports that
 * must pass. It also checks the table against the folders of src/.
 */

const configFile = path.join(packageRoot, '.dependency-cruiser.cjs');
const cruiser = path.join(packageRoot, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

interface Rule {
  name: string;
}
const config = createRequire(import.meta.url)(configFile) as { forbidden: Rule[] };

/** The layer of each folder, read from the rule names the config generates (layer-L<n>-<folder>). */
function layerOf(): Map<string, number[]> {
  const layers = new Map<string, number[]>();
  for (const { name } of config.forbidden) {
    const m = /^layer-L(\d+)-(.+)$/.exec(name);
    if (m) layers.set(m[2]!, [...(layers.get(m[2]!) ?? []), Number(m[1])]);
  }
  return layers;
}

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
}

/** Runs the cruiser on dir/src with kfarm's config; the violations, as "rule: from -> to". */
function cruise(dir: string): string[] {
  let out: string;
  try {
    out = execFileSync(process.execPath, [cruiser, 'src', '--config', configFile, '--output-type', 'json'], { cwd: dir, encoding: 'utf8' });
  } catch (error) {
    // the cruiser exits with the number of errors, the JSON still on stdout
    out = (error as { stdout: string }).stdout;
  }
  const { summary } = JSON.parse(out) as { summary: { violations: Violation[] } };
  return summary.violations.map((v) => `${v.rule.name}: ${v.from}${v.to === v.from ? '' : ` -> ${v.to}`}`).sort();
}

describe('folder layers (.dependency-cruiser.cjs)', () => {
  it('places every folder of src/ in exactly one layer', () => {
    const layers = layerOf();
    const folders = readdirSync(path.join(packageRoot, 'src'), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    expect(folders.filter((f) => !layers.has(f))).toEqual([]);
    expect([...layers].filter(([, levels]) => levels.length > 1)).toEqual([]);
  });

  const dir = mkdtempSync(path.join(tmpdir(), 'kfarm-layers-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (file: string, text: string) => {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
  };

  it('flags upward (also type-only), same-layer, unplaced, circular and src-to-test imports, and passes downward ones', () => {
    write('package.json', '{ "type": "module" }\n');
    write('tsconfig.json', JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true }, include: ['src', 'test'] }));
    // allowed: down a layer, down to L0 from the top, the leaves from anywhere and from each other (src/paths.ts is written below, importing a folder)
    write('src/errors/error.ts', 'export class E extends Error {}\n');
    write('src/util/down.ts', "import { E } from '../errors/error.js';\nexport const e = new E();\n");
    write('src/cli/main.ts', "import { E } from '../errors/error.js';\nimport { v } from '../version.js';\nexport const m = [new E(), v];\n");
    write('src/version.ts', "import { root } from './paths.js';\nexport const v = root;\n");
    // forbidden
    write('src/report/report.ts', 'export interface Report { ok: boolean }\n');
    write('src/util/up.ts', "import type { Report } from '../report/report.js';\nexport const r: Report | undefined = undefined;\n");
    write('src/process/sideways.ts', "import { e } from '../util/down.js';\nexport const s = e;\n");
    write('src/fresh/new.ts', 'export const f = 1;\n');
    write('src/job/a.ts', "import { b } from './b.js';\nexport const a = (): number => b();\n");
    write('src/job/b.ts', "import { a } from './a.js';\nexport const b = (): number => a();\n");
    write('test/helper.ts', 'export const h = 1;\n');
    write('src/dkms/uses-test.ts', "import { h } from '../../test/helper.js';\nexport const t = h;\n");
    write('src/paths.ts', "import { E } from './errors/error.js';\nexport const root = String(new E());\n");
    write('src/matrix/gone.ts', "import { g } from '../util/gone.js';\nexport const x = g;\n");

    expect(cruise(dir)).toEqual(
      [
        'folder-in-no-layer: src/fresh/new.ts',
        'layer-L1-util: src/util/up.ts -> src/report/report.ts',
        'layer-L1-process: src/process/sideways.ts -> src/util/down.ts',
        'no-circular: src/job/a.ts -> src/job/b.ts',
        'src-not-to-tests: src/dkms/uses-test.ts -> test/helper.ts',
        'not-to-unresolvable: src/matrix/gone.ts -> ../util/gone.js',
        'leaf-imports-folder: src/paths.ts -> src/errors/error.ts',
      ].sort(),
    );
  });
});
