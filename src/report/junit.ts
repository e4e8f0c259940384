import type { Reason } from '../dkms/verdicts.js';
import type { BuildReport, KernelReport } from './report.js';
import type { LoadReport } from '../job/verify-job.js';
import { xmlAttr, xmlCdata, xmlText } from './xml-text.js';

/**
 * Pure: report.json as JUnit XML, the dialect GitLab (unit test reports) and Jenkins (junit
 * plugin) both read. One testsuite per module; one testcase per (module, kernel) named for the
 * kernel, classname `<module>.<release>-<debianArch>` (Jenkins reads the part before the last
 * dot as the package, GitLab shows the classname as the suite); load verification, when it
 * ran, as its own testcase `<kernel> load`. Counts, times in seconds and element order follow
 * the junit-10 schema the Jenkins xunit plugin publishes (test/fixtures/junit/junit.xsd).
 */
export interface JunitInput {
  report: BuildReport;
  /** the machine the report is from (testsuite@hostname) */
  hostname: string;
  /** the last lines of a log, by the log's path relative to the out dir as the report gives it */
  excerpts?: ReadonlyMap<string, string>;
}

/**
 * Each reason's JUnit element (docs/formats.md "Failure reasons"): failures kfarm or its workers
 * caused, not the module, are JUnit's `error`, not `failure`; an excluded kernel is `skipped`.
 * A Record over every reason, so a reason added to dkms/verdicts.ts does not compile until it is
 * placed here (and test/unit/verdicts.test.ts checks the table against the docs).
 */
export const JUNIT_ELEMENT: Readonly<Record<Reason, 'failure' | 'error' | 'skipped'>> = {
  'build-exclusive': 'skipped',
  'bad-conf': 'failure',
  'bad-source': 'failure',
  'make-failed': 'failure',
  'missing-module': 'failure',
  'script-failed': 'failure',
  'missing-dependency': 'failure',
  'patch-missing': 'failure',
  'patch-failed': 'failure',
  'unsafe-output': 'failure',
  'output-too-large': 'failure',
  timeout: 'failure',
  killed: 'failure',
  'disk-full': 'failure',
  'missing-headers': 'failure',
  'driver-error': 'error',
  'worker-error': 'error',
};

type Outcome = { kind: 'passed'; out: string } | { kind: 'failure' | 'error' | 'skipped'; message: string; type: string; body: string };

interface Case {
  classname: string;
  name: string;
  ms: number;
  outcome: Outcome;
}

export function renderJunit(input: JunitInput): string {
  const { report } = input;
  const suites = moduleSuites(report).map((s) => ({ name: s.name, sourceSha256: s.sourceSha256, cases: s.rows.flatMap((k) => casesOf(k, s.module, input.excerpts)) }));
  const all = suites.flatMap((s) => s.cases);
  const n = (kind: Outcome['kind']) => all.filter((c) => c.outcome.kind === kind).length;
  const root = `<testsuites name="kfarm" tests="${all.length}" failures="${n('failure')}" errors="${n('error')}" time="${seconds(report.durationMs)}">`;
  return ['<?xml version="1.0" encoding="UTF-8"?>', root, ...suites.map((s, i) => suiteXml(s, i, input)), '</testsuites>', ''].join('\n');
}

/** The report's rows by module, in the order the modules were given. */
interface ModuleSuite {
  name: string;
  module: string;
  sourceSha256: string | undefined;
  rows: KernelReport[];
}

function moduleSuites(report: BuildReport): ModuleSuite[] {
  const suites = new Map<string, ModuleSuite>();
  for (const m of report.modules ?? [{ name: report.module, version: report.version, source: report.source }]) {
    suites.set(`${m.name}\u0000${m.version}`, { name: `${m.name}-${m.version}`, module: m.name, sourceSha256: m.source.sha256, rows: [] });
  }
  for (const k of report.kernels) {
    const module = k.module ?? report.module;
    const version = k.version ?? report.version;
    const key = `${module}\u0000${version}`;
    let suite = suites.get(key);
    if (!suite) suites.set(key, (suite = { name: `${module}-${version}`, module, sourceSha256: undefined, rows: [] }));
    suite.rows.push(k);
  }
  return [...suites.values()];
}

function casesOf(k: KernelReport, module: string, excerpts: ReadonlyMap<string, string> | undefined): Case[] {
  const classname = `${module}.${k.release}-${k.debianArch}`;
  const build: Case = { classname, name: k.kernel, ms: k.durationMs, outcome: buildOutcome(k, excerpts?.get(k.log)) };
  if (!k.load) return [build];
  const load = k.load;
  return [build, { classname, name: `${k.kernel} load`, ms: (load.bootMs ?? 0) + (load.loadMs ?? 0), outcome: loadOutcome(load, load.log ? excerpts?.get(load.log) : undefined) }];
}

function buildOutcome(k: KernelReport, excerpt: string | undefined): Outcome {
  const lines = (pairs: Array<[string, string | undefined]>) => pairs.filter(([, v]) => v !== undefined && v !== '').map(([label, v]) => `${label}: ${v}`);
  if (k.verdict === 'built') {
    const modules = k.modules.map((m) => `${m.file} sha256:${m.sha256} -> ${m.destination}`);
    return {
      kind: 'passed',
      out: [
        ...modules,
        ...lines([
          ['cached', k.cached ? 'yes' : undefined],
          ['log', k.log],
        ]),
      ].join('\n'),
    };
  }
  const reason = k.reason ?? k.verdict;
  const detail = k.verdict === 'failed' ? (k.firstError ?? k.message) : k.message;
  const body = [
    ...lines([
      ['reason', reason],
      ['message', k.message],
      ['first error', k.firstError],
      ['image', k.image],
      ['log', k.log],
    ]),
    ...(excerpt ? ['', `--- last lines of ${k.log} ---`, excerpt] : []),
  ].join('\n');
  const message = detail ? `${reason}: ${detail}` : reason;
  if (k.verdict === 'excluded') return { kind: 'skipped', message, type: reason, body };
  return { kind: k.reason && JUNIT_ELEMENT[k.reason] === 'error' ? 'error' : 'failure', message, type: reason, body };
}

function loadOutcome(load: LoadReport, excerpt: string | undefined): Outcome {
  const facts = [
    load.accel ? `accel: ${load.accel}${load.accel === 'tcg' ? ' (software emulation)' : ''}` : undefined,
    load.bootMs !== undefined ? `boot: ${load.bootMs} ms` : undefined,
    load.loadMs !== undefined ? `load: ${load.loadMs} ms` : undefined,
    load.log ? `log: ${load.log}` : undefined,
  ].filter((l): l is string => l !== undefined);
  if (load.verdict === 'loaded') return { kind: 'passed', out: facts.join('\n') };
  const reason = load.reason ?? load.verdict;
  const body = [
    `reason: ${reason}`,
    ...(load.firstError ? [`first error: ${load.firstError}`] : []),
    ...facts,
    ...(excerpt ? ['', `--- last lines of ${load.log ?? 'the console'} ---`, excerpt] : []),
  ].join('\n');
  const message = load.firstError ? `${reason}: ${load.firstError}` : reason;
  return { kind: load.verdict === 'load-failed' ? 'failure' : 'skipped', message, type: reason, body };
}

function suiteXml(suite: { name: string; sourceSha256: string | undefined; cases: Case[] }, id: number, input: JunitInput): string {
  const { name, cases } = suite;
  const n = (kind: Outcome['kind']) => cases.filter((c) => c.outcome.kind === kind).length;
  const attrs = [
    `name="${xmlAttr(name)}"`,
    `tests="${cases.length}"`,
    `failures="${n('failure')}"`,
    `errors="${n('error')}"`,
    `skipped="${n('skipped')}"`,
    `time="${seconds(cases.reduce((t, c) => t + c.ms, 0))}"`,
    `timestamp="${xmlAttr(input.report.startedAt)}"`,
    `hostname="${xmlAttr(input.hostname)}"`,
    `id="${id}"`,
  ];
  const props = [['kfarm.version', input.report.tool.version], ...(suite.sourceSha256 ? [['source.sha256', suite.sourceSha256]] : [])].map(
    ([k, v]) => `      <property name="${xmlAttr(k ?? '')}" value="${xmlAttr(v ?? '')}"/>`,
  );
  return [`  <testsuite ${attrs.join(' ')}>`, '    <properties>', ...props, '    </properties>', ...cases.map(caseXml), '  </testsuite>'].join('\n');
}

function caseXml(c: Case): string {
  const open = `    <testcase classname="${xmlAttr(c.classname)}" name="${xmlAttr(c.name)}" time="${seconds(c.ms)}"`;
  const o = c.outcome;
  if (o.kind === 'passed') return o.out ? `${open}>\n      <system-out>${xmlText(o.out)}</system-out>\n    </testcase>` : `${open}/>`;
  return `${open}>\n      <${o.kind} message="${xmlAttr(o.message)}" type="${xmlAttr(o.type)}">${xmlCdata(o.body)}</${o.kind}>\n    </testcase>`;
}

/** Milliseconds as seconds with three decimals, the form every JUnit reader parses ("41.200"). */
function seconds(ms: number): string {
  return (Number.isFinite(ms) && ms > 0 ? ms / 1000 : 0).toFixed(3);
}
