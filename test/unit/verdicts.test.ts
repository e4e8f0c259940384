import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REASONS, REASON_NAMES, VERDICT_NAMES, decidersOf, isContainerReason, type Decider, type Reason } from '../../src/dkms/verdicts.js';
import { parseDriverResult } from '../../src/dkms/driver-result.js';
import { JUNIT_ELEMENT, renderJunit } from '../../src/report/junit.js';
import { kernelRecordSchema } from '../../src/job/job-payload.js';
import { row, sampleReport } from '../fixtures/junit/sample-report.js';

/**
 * The list in src/dkms/verdicts.ts is the only list of a build's reasons: every word the driver,
 * the worker or the coordinator produces must be in it (with who decides it), and the docs'
 * table and the JUnit mapping must hold exactly its words. The producers are found by reading
 * the sources, so a new `finish failed <word>` in driver.sh or a new `reason: '<word>'` in the
 * build side's TypeScript fails here until the list has it.
 */
const root = path.resolve(import.meta.dirname, '../..');
const read = (p: string) => readFileSync(path.join(root, p), 'utf8');
const WORD = /^[a-z]+(?:-[a-z]+)*$/;

/** A reason word in the sources: `set` where a verdict is decided, `read` where one is only looked at. */
interface Found {
  word: string;
  where: string;
  by: Decider;
  kind: 'set' | 'read';
}

/** driver.sh: `finish failed|excluded <word>`, and the step outcomes it passes through as reasons (`step_reasons`). */
function driverReasons(): Found[] {
  const sh = read('src/dkms/driver.sh');
  const found: Found[] = [];
  sh.split('\n').forEach((line, i) => {
    for (const m of line.matchAll(/\bfinish (?:failed|excluded) "?([a-z][a-z-]*)"?/g)) found.push({ word: m[1] ?? '', where: `driver.sh:${i + 1}`, by: 'driver', kind: 'set' });
  });
  const steps = /step_reasons="([^"]*)"/.exec(sh);
  for (const word of (steps?.[1] ?? '').split(/\s+/).filter(Boolean)) found.push({ word, where: 'driver.sh step_reasons', by: 'driver', kind: 'set' });
  return found;
}

/** The build side's TypeScript: the folders that make records and reports (not verify/, whose reasons are load reasons). */
const BUILD_SIDE: ReadonlyArray<[string, Decider]> = [
  ['src/dkms', 'driver'],
  ['src/worker', 'worker'],
  ['src/coordinator', 'coordinator'],
  ['src/queue', 'coordinator'],
  ['src/report', 'coordinator'],
  ['src/store', 'coordinator'],
];

/** The load side's files within those folders: their reasons are load reasons, listed in job/verify-job.ts. */
const LOAD_SIDE = new Set(['src/coordinator/verify-out-dir.ts', 'src/worker/verify-worker.ts']);

function tsFiles(dir: string): string[] {
  return readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join(dir, f))
    .filter((f) => !LOAD_SIDE.has(f));
}

/**
 * Literals set as a reason (`reason: 'x'`, `reason = ... 'x' ...`), compared with one
 * (`reason === 'x'`), returned by a function named `...Reason`, or listed in make-log's
 * SAID_BY_KFARM. Literals compared with anything else on such a line (a row's state) are not reasons.
 */
function tsReasons(): Found[] {
  const found: Found[] = [];
  for (const [dir, by] of BUILD_SIDE) {
    for (const file of tsFiles(dir)) {
      const text = read(file);
      text.split('\n').forEach((line, i) => {
        const where = `${file}:${i + 1}`;
        for (const m of line.matchAll(/\breason\s*(?:===|!==)\s*'([^']*)'/g)) found.push({ word: m[1] ?? '', where, by, kind: 'read' });
        const set = /\breason\b(?:: Reason)?\s*(?::|=(?!=)|\?\?)(.*)$/.exec(line);
        if (!set) return;
        const rest = (set[1] ?? '').replace(/(?:===|!==)\s*'[^']*'/g, '').split(/\b(?:message|firstError)\b/)[0] ?? '';
        for (const m of rest.matchAll(/'([^']*)'/g)) if (WORD.test(m[1] ?? '')) found.push({ word: m[1] ?? '', where, by, kind: 'set' });
      });
      for (const m of text.matchAll(/function \w*Reason\([^)]*\)[^{]*\{([\s\S]*?)\n\}/g)) {
        for (const r of (m[1] ?? '').matchAll(/return [^;]*;/g)) {
          for (const l of r[0].replace(/(?:===|!==)\s*'[^']*'/g, '').matchAll(/'([^']*)'/g))
            if (WORD.test(l[1] ?? '')) found.push({ word: l[1] ?? '', where: `${file} ${m[0].split('(')[0]}`, by, kind: 'set' });
        }
      }
      const said = /SAID_BY_KFARM[^[]*\[([^\]]*)\]/.exec(text);
      for (const m of (said?.[1] ?? '').matchAll(/'([^']*)'/g)) found.push({ word: m[1] ?? '', where: `${file} SAID_BY_KFARM`, by: 'driver', kind: 'read' });
    }
  }
  return found;
}

const listed = new Set<string>(REASON_NAMES);

describe('the list of verdicts and reasons (src/dkms/verdicts.ts)', () => {
  it("has every reason driver.sh produces, each marked as the driver's", () => {
    const found = driverReasons();
    // the scan must see the driver's words at all, or it proves nothing
    expect(found.map((f) => f.word)).toEqual(expect.arrayContaining(['bad-conf', 'make-failed', 'driver-error', 'build-exclusive', 'missing-dependency', 'script-failed']));
    const unlisted = found.filter((f) => !listed.has(f.word)).map((f) => `${f.word} (${f.where})`);
    expect(unlisted, 'reasons driver.sh produces that src/dkms/verdicts.ts lacks').toEqual([]);
    const notDriver = found.filter((f) => listed.has(f.word) && !decidersOf(f.word as Reason).includes('driver')).map((f) => `${f.word} (${f.where})`);
    expect(notDriver, 'reasons driver.sh produces whose `by` lacks driver').toEqual([]);
  });

  it("has every reason the build side's TypeScript sets, each marked with who decides it", () => {
    const found = tsReasons();
    expect(found.map((f) => f.word)).toEqual(expect.arrayContaining(['worker-error', 'timeout', 'killed', 'bad-source', 'unsafe-output', 'output-too-large']));
    const unlisted = found.filter((f) => !listed.has(f.word)).map((f) => `${f.word} (${f.where})`);
    expect(unlisted, 'reasons set in src/ that src/dkms/verdicts.ts lacks').toEqual([]);
    const wrong = found
      .filter((f) => f.kind === 'set')
      .filter((f) => !decidersOf(f.word as Reason).includes(f.by))
      .map((f) => `${f.word} by ${f.by} (${f.where})`);
    expect(wrong).toEqual([]);
  });

  it('lists no reason nothing produces', () => {
    const produced = new Set([...driverReasons(), ...tsReasons()].filter((f) => f.kind === 'set').map((f) => f.word));
    expect(REASON_NAMES.filter((r) => !produced.has(r))).toEqual([]);
  });

  it('is exactly the table in docs/formats.md, with the same fault and JUnit element', () => {
    const doc = read('docs/formats.md');
    const start = doc.indexOf('### Failure reasons');
    expect(start).toBeGreaterThan(-1);
    const end = doc.indexOf('\n#', start + 1);
    const section = doc.slice(start, end === -1 ? undefined : end);
    const rows = section
      .split('\n')
      .filter((l) => /^\| `/.test(l))
      .map((l) =>
        l
          .split('|')
          .slice(1, -1)
          .map((c) => c.trim()),
      );
    expect(rows.length).toBeGreaterThan(5);
    const table = new Map<string, { fault: string; junit: string }>();
    for (const [words = '', , fault = '', junit = ''] of rows) {
      for (const m of words.matchAll(/`([^`]+)`/g)) {
        expect(table.has(m[1] ?? ''), `${m[1]} is twice in the table`).toBe(false);
        table.set(m[1] ?? '', { fault, junit: junit.replace(/`/g, '') });
      }
    }
    expect([...table.keys()].sort(), 'the docs table against the list').toEqual([...REASON_NAMES].sort());
    for (const r of REASON_NAMES) expect(table.get(r), r).toEqual({ fault: REASONS[r].fault, junit: JUNIT_ELEMENT[r] });
  });

  it('maps every reason to a JUnit element, and junit.xml uses it', () => {
    expect(Object.keys(JUNIT_ELEMENT).sort()).toEqual([...REASON_NAMES].sort());
    for (const r of REASON_NAMES) {
      const verdict = REASONS[r].verdict;
      const report = { ...sampleReport(), kernels: [row({ kernel: '6.1.0-56-amd64', verdict, reason: r, message: 'm' })] };
      const xml = renderJunit({ report, hostname: 'h' });
      expect(xml, r).toContain(`<${JUNIT_ELEMENT[r]} message="${r}: m" type="${r}"`);
    }
  });

  it('is what the record schema accepts: every listed word, nothing else', () => {
    const record = {
      schemaVersion: 1,
      kernel: '6.1.0-56-amd64',
      arch: 'x86_64',
      image: 'debian-12',
      verdict: 'failed',
      modules: [],
      log: { sha256: 'a'.repeat(64), size: 1 },
      logTruncated: false,
      durationMs: 1,
      worker: 'w',
      finishedAt: '2026-01-01T00:00:00Z',
      cacheable: false,
    };
    for (const r of REASON_NAMES) expect(kernelRecordSchema.safeParse({ ...record, reason: r }).success, r).toBe(true);
    for (const v of VERDICT_NAMES) expect(kernelRecordSchema.safeParse({ ...record, verdict: v }).success, v).toBe(true);
    for (const bad of ['not-a-reason', 'no-modules', 'load-failed', '']) expect(kernelRecordSchema.safeParse({ ...record, reason: bad }).success, bad).toBe(false);
  });

  it("lets the container name only the driver's and the worker's reasons", () => {
    expect(parseDriverResult('verdict\tfailed\nreason\tworker-error\n').reason).toBe('driver-error');
    expect(parseDriverResult('verdict\tfailed\nreason\tbad-source\n').reason).toBe('driver-error');
    for (const r of REASON_NAMES.filter((x) => isContainerReason(x))) expect(parseDriverResult(`verdict\tfailed\nreason\t${r}\n`).reason).toBe(r);
  });
});
