import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { validateWorkflow } from '@action-validator/core';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { run } from '../../src/process/run.js';
import { packageRoot } from '../../src/paths.js';

/**
 * examples/ci/github-actions-farm.yml: a valid workflow (action-validator, offline) whose build
 * step is `kfarm build . --farm` with the token from a secret, and which uploads dist/ also when
 * a kernel failed. test/e2e/serve-deploy.test.ts runs its steps and farm-build.sh against a farm.
 */
interface Step {
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  env?: Record<string, string>;
  with?: Record<string, string | number>;
}
const FILE = path.join(packageRoot, 'examples', 'ci', 'github-actions-farm.yml');

describe('examples/ci/github-actions-farm.yml', () => {
  it('is a valid workflow for action-validator, which does refuse a broken one', async () => {
    const text = await readFile(FILE, 'utf8');
    expect(validateWorkflow(text).errors).toEqual([]);
    const broken = YAML.parse(text) as { jobs: Record<string, { steps: Array<Record<string, unknown>> }> };
    (broken.jobs['dkms-build']?.steps[0] as Record<string, unknown>).uses_ = 'x';
    expect(validateWorkflow(YAML.stringify(broken)).errors.length).toBeGreaterThan(0);
  });

  it('builds with --farm and --out dist, the token from a secret, and uploads dist/ even when a kernel failed', async () => {
    const doc = YAML.parse(await readFile(FILE, 'utf8')) as { jobs: Record<string, { steps: Step[] }> };
    const steps = doc.jobs['dkms-build']?.steps ?? [];
    const build = steps.findIndex((s) => /kfarm build \. --farm "\$KFARM_FARM_URL" .*--out dist$/.test(s.run ?? ''));
    expect(build).toBeGreaterThan(0);
    expect(steps[build]?.env?.KFARM_FARM_TOKEN).toBe('${{ secrets.KFARM_FARM_TOKEN }}');
    expect(steps[build]?.run).not.toMatch(/secrets|TOKEN/);
    const upload = steps.slice(build + 1).find((s) => s.uses?.startsWith('actions/upload-artifact@'));
    expect(upload?.with?.path).toBe('dist/');
    expect(upload?.if).toBe('${{ !cancelled() }}');
    for (const s of steps.filter((x) => x.run)) expect(await run('bash', ['-n'], { input: s.run ?? '', allowFailure: true }), s.name).toMatchObject({ exitCode: 0 });
  });
});
