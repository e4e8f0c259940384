import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { validateWorkflow } from '@action-validator/core';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { run } from '../../src/process/run.js';
import { packageRoot } from '../../src/paths.js';
import { sampleReport } from '../fixtures/junit/sample-report.js';

/**
 * examples/ci: the GitHub Actions workflow is checked by action-validator (GitHub's workflow
 * schema, offline); the GitLab job by kfarm's own small schema of GitLab's documented keywords
 * (test/fixtures/ci/gitlab-ci-keywords.schema.json: no offline validator of GitLab's own schema
 * runs on this Node). Both must publish junit.xml and report.html from the out dir they build
 * into, and every shell line must parse with bash.
 */
const CI = path.join(packageRoot, 'examples', 'ci');

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, string | boolean | number>;
}
interface Workflow {
  env: Record<string, string>;
  jobs: Record<string, { steps: Step[] }>;
}
interface GitlabJob {
  script: string[];
  before_script: string[];
  artifacts: { when: string; paths: string[]; reports: { junit: string } };
}

const readYaml = async <T>(file: string): Promise<{ text: string; doc: T }> => {
  const text = await readFile(path.join(CI, file), 'utf8');
  return { text, doc: YAML.parse(text) as T };
};

async function bashParses(script: string): Promise<{ exitCode: number; stderr: string }> {
  return run('bash', ['-n'], { input: script, allowFailure: true });
}

describe('examples/ci/github-actions.yml', () => {
  it('is a valid workflow for action-validator, which does refuse a broken one', async () => {
    const { text, doc } = await readYaml<Workflow>('github-actions.yml');
    expect(validateWorkflow(text).errors).toEqual([]);
    const broken = structuredClone(doc);
    (broken.jobs['dkms-build']?.steps[0] as Record<string, unknown>).uses_ = 'x';
    expect(validateWorkflow(YAML.stringify(broken)).errors.length).toBeGreaterThan(0);
  });

  it('builds into the out dir and publishes its junit.xml and report.html even when a kernel failed', async () => {
    const { doc } = await readYaml<Workflow>('github-actions.yml');
    expect(doc.env.KFARM_OUT).toBe('${{ github.workspace }}/kfarm-out');
    const steps = doc.jobs['dkms-build']?.steps ?? [];
    const build = steps.findIndex((s) => /kfarm\.js" build .*--out "\$KFARM_OUT"/.test(s.run ?? ''));
    expect(build).toBeGreaterThan(0);
    const after = steps.slice(build + 1);
    const junit = after.find((s) => s.uses?.startsWith('mikepenz/action-junit-report@'));
    expect(junit?.with?.report_paths).toBe('kfarm-out/junit.xml');
    const upload = after.find((s) => s.uses?.startsWith('actions/upload-artifact@') && String(s.with?.path).includes('report.html'));
    expect(String(upload?.with?.path).split('\n')).toEqual(expect.arrayContaining(['kfarm-out/report.html', 'kfarm-out/junit.xml']));
    // kfarm exits 1 when a kernel failed: the reports are published all the same
    for (const s of [junit, upload]) expect(s?.if).toBe('${{ !cancelled() }}');
    for (const s of steps.filter((x) => x.run)) expect(await bashParses(s.run ?? ''), s.name).toMatchObject({ exitCode: 0 });
  });

  it('its job summary step, run as the runner would, lists the counts and each failed kernel', async () => {
    const { doc } = await readYaml<Workflow>('github-actions.yml');
    const step = doc.jobs['dkms-build']?.steps.find((s) => s.name === 'Job summary');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kfarm-ci-summary-'));
    await writeFile(path.join(dir, 'report.json'), JSON.stringify(sampleReport()));
    const summary = path.join(dir, 'summary.md');
    const ran = await run('bash', ['-e', '-c', step?.run ?? 'false'], { env: { ...process.env, KFARM_OUT: dir, GITHUB_STEP_SUMMARY: summary }, allowFailure: true });
    expect(ran.exitCode, ran.stderr).toBe(0);
    const text = await readFile(summary, 'utf8');
    expect(text).toContain('## kfarm: hello 1.0.0, only61 2.0');
    expect(text).toContain('4 built, 1 excluded, 2 failed');
    expect(text).toContain('| 6.1.0-56-amd64 | hello | load-failed | `hello: Unknown symbol foo (err -2)` |');
    expect(text).toContain('| 7.3.4+deb13-arm64 | only61 | failed | `the worker went away` |');
    // strangers' text cannot break the table or the code span
    expect(text).toContain('| 6.12.117+deb12-amd64 | hello | failed | `x');
    expect(
      text
        .split('\n')
        .filter((l) => l.startsWith('| 6.12.117+deb12-amd64 | hello'))
        .map((l) => l.split('|').length),
    ).toEqual([6]);
  });
});

describe('examples/ci/gitlab-ci.yml', () => {
  const schema = async () => JSON.parse(await readFile(path.join(packageRoot, 'test', 'fixtures', 'ci', 'gitlab-ci-keywords.schema.json'), 'utf8')) as object;

  it("uses only GitLab's documented keywords in their documented shapes (kfarm's keyword schema, which does refuse a typo)", async () => {
    const { doc } = await readYaml<Record<string, unknown>>('gitlab-ci.yml');
    const validate = new Ajv({ allErrors: true, strict: false }).compile(await schema());
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
    const typo = structuredClone(doc) as { kfarm: Record<string, unknown> & { artifacts: { reports: Record<string, unknown> } } };
    typo.kfarm.artifacts.reports.junitt = typo.kfarm.artifacts.reports.junit;
    expect(validate(typo)).toBe(false);
    const noScript = structuredClone(doc) as { kfarm: Record<string, unknown> };
    noScript.kfarm.scripts = noScript.kfarm.script;
    delete noScript.kfarm.script;
    expect(validate(noScript)).toBe(false);
  });

  it("publishes the out dir's junit.xml as the JUnit report and report.html as an artifact, also when the job failed", async () => {
    const { doc } = await readYaml<{ variables: Record<string, string>; kfarm: GitlabJob }>('gitlab-ci.yml');
    const out = doc.variables.KFARM_OUT;
    expect(doc.kfarm.script.join('\n')).toMatch(/kfarm\.js" build "\$CI_PROJECT_DIR" --out "\$CI_PROJECT_DIR\/\$KFARM_OUT"/);
    expect(doc.kfarm.artifacts.reports.junit).toBe(`${out}/junit.xml`);
    expect(doc.kfarm.artifacts.paths).toEqual(expect.arrayContaining([`${out}/report.html`, `${out}/junit.xml`, `${out}/logs/`]));
    expect(doc.kfarm.artifacts.when).toBe('always');
    for (const line of [...doc.kfarm.before_script, ...doc.kfarm.script]) expect(await bashParses(line), line).toMatchObject({ exitCode: 0 });
  });
});
