import { describe, expect, it } from 'vitest';
import type { ResultRow } from '../../src/service/farm-db.js';
import { buildFindings } from '../../src/service/findings/build-findings.js';
import { parseWebhookEvent, serializeWebhookEvent, type WebhookEvent } from '../../src/service/notify/webhook-event.js';

/**
 * What a finished build makes the farm say: first builds, first failures and newly broken
 * kernel series, from the history before the build and the build's own rows; nothing for a
 * build that only repeats what was known.
 */

const K55 = '6.1.0-55-amd64';
const K56 = '6.1.0-56-amd64';
const K57 = '6.1.0-57-amd64';
const K58 = '6.1.0-58-amd64';
const K612 = '6.12.118+deb12-amd64';

let builds = 0;
/** one build's rows, all recorded at the same time (as the runner records them) */
function build(cells: Array<[string, ResultRow['verdict'], Partial<ResultRow>?]>, common: Partial<ResultRow> = {}): ResultRow[] {
  builds++;
  const buildId = `b-2026110100${String(builds).padStart(4, '0')}-abcdef`;
  const at = new Date(Date.UTC(2026, 10, 1, builds)).toISOString();
  return cells.map(([kernel, verdict, extra]) => ({
    buildId,
    module: 'hello',
    version: '1.0',
    kernel,
    release: 'debian-12',
    arch: 'x86_64',
    flavour: 'amd64',
    verdict,
    at,
    ...(verdict === 'failed' ? { reason: 'compile-error', firstError: `hello.c:3:1: error: ${kernel} broke it` } : {}),
    ...common,
    ...extra,
  }));
}

const reportPath = (id: string) => `/api/v1/builds/${id}/report`;
const findings = (before: ResultRow[][], now: ResultRow[]) => buildFindings({ before: before.flat(), rows: now, reportPath });
const brief = (events: WebhookEvent[]) =>
  events.map((e) =>
    e.type === 'regression'
      ? `${e.type} ${e.check ?? 'build'} ${e.lastGood.kernel}..${e.firstBad.kernel}`
      : e.type === 'kernel-built' || e.type === 'new-failure'
        ? `${e.type} ${e.kernel}`
        : e.type,
  );

describe('buildFindings: the first build of a module', () => {
  it('says every kernel built, and nothing else, when all build', () => {
    expect(
      brief(
        findings(
          [],
          build([
            [K56, 'built'],
            [K57, 'built'],
            [K612, 'built'],
          ]),
        ),
      ),
    ).toEqual([`kernel-built ${K56}`, `kernel-built ${K57}`, `kernel-built ${K612}`]);
  });

  it('builds on the older 6.1 ABI, fails on the newer: a build, a new failure and a regression with its window', () => {
    const now = build([
      [K56, 'built'],
      [K57, 'failed'],
    ]);
    const events = findings([], now);
    expect(brief(events)).toEqual([`kernel-built ${K56}`, `new-failure ${K57}`, `regression build ${K56}..${K57}`]);
    const regression = events[2];
    expect(regression).toMatchObject({
      type: 'regression',
      module: 'hello',
      version: '1.0',
      kernel: K57,
      verdict: 'failed',
      reason: 'compile-error',
      firstError: `hello.c:3:1: error: ${K57} broke it`,
      buildId: now[0]?.buildId,
      reportPath: `/api/v1/builds/${now[0]?.buildId}/report`,
      lastGood: { kernel: K56, buildId: now[0]?.buildId },
      firstBad: { kernel: K57, buildId: now[0]?.buildId },
      sentence: `builds on ${K56}, fails since ${K57}`,
    });
  });

  it('a 6.12 failure beside a building 6.1 line is a new failure, not a regression: the lines are separate series', () => {
    expect(
      brief(
        findings(
          [],
          build([
            [K57, 'built'],
            [K612, 'failed'],
          ]),
        ),
      ),
    ).toEqual([`kernel-built ${K57}`, `new-failure ${K612}`]);
  });

  it('says nothing about excluded kernels (BUILD_EXCLUSIVE)', () => {
    expect(findings([], build([[K612, 'excluded', { reason: 'build-exclusive' }]]))).toEqual([]);
  });

  it('says nothing for a build without results', () => {
    expect(findings([build([[K56, 'built']])], [])).toEqual([]);
  });
});

describe('buildFindings: repeats of known results say nothing', () => {
  it('a second build answering the same verdicts (the result store, a rebuild) is silent', () => {
    const first = build([
      [K56, 'built'],
      [K57, 'failed'],
      [K612, 'built'],
    ]);
    expect(findings([], first)).toHaveLength(4);
    const second = build([
      [K56, 'built'],
      [K57, 'failed'],
      [K612, 'built'],
    ]);
    expect(findings([first], second)).toEqual([]);
  });

  it('an already open regression hit by another failing kernel: a new failure for the kernel, no second regression', () => {
    const first = build([
      [K56, 'built'],
      [K57, 'failed'],
    ]);
    expect(brief(findings([first], build([[K58, 'failed']])))).toEqual([`new-failure ${K58}`]);
  });

  it('an open regression narrowed by a kernel between its ends is the same regression', () => {
    const first = build([
      [K55, 'built'],
      [K57, 'failed'],
    ]);
    expect(brief(findings([first], build([[K56, 'built']])))).toEqual([`kernel-built ${K56}`]);
  });

  it('a kernel that failed before and fails again is not a new failure', () => {
    const first = build([[K612, 'failed']]);
    expect(findings([first], build([[K612, 'failed']]))).toEqual([]);
  });

  it('a kernel that built before and builds again is not news, whatever other modules did', () => {
    const other = build([[K57, 'failed']], { module: 'other' });
    const first = build([[K57, 'built']]);
    expect(findings([other, first], build([[K57, 'built']]))).toEqual([]);
  });
});

describe('buildFindings: what changes is told', () => {
  it('an ok series whose new kernel fails: one regression, lastGood from the earlier build, firstBad from this one', () => {
    const first = build([[K56, 'built']]);
    const second = build([[K57, 'failed']]);
    const events = findings([first], second);
    expect(brief(events)).toEqual([`new-failure ${K57}`, `regression build ${K56}..${K57}`]);
    expect(events[1]).toMatchObject({ lastGood: { kernel: K56, buildId: first[0]?.buildId }, firstBad: { kernel: K57, buildId: second[0]?.buildId }, buildId: second[0]?.buildId });
    // the event's time is when the first bad kernel was first seen bad
    expect(events[1]?.time).toBe(second[0]?.at);
  });

  it('a kernel that built before and fails now (a rebuild with another toolchain) is a new failure, and breaks its series', () => {
    const first = build([
      [K56, 'built'],
      [K57, 'built'],
    ]);
    expect(brief(findings([first], build([[K57, 'failed']])))).toEqual([`new-failure ${K57}`, `regression build ${K56}..${K57}`]);
  });

  it('a series that never built: a newer kernel building is news, and a still newer one failing is a regression', () => {
    const first = build([[K55, 'failed']]);
    const second = build([[K56, 'built']]);
    expect(brief(findings([first], second))).toEqual([`kernel-built ${K56}`]);
    expect(brief(findings([first, second], build([[K57, 'failed']])))).toEqual([`new-failure ${K57}`, `regression build ${K56}..${K57}`]);
  });

  it('a fixed series that breaks again is a new regression (its new window)', () => {
    const first = build([
      [K55, 'built'],
      [K56, 'failed'],
    ]);
    const second = build([[K57, 'built']]);
    expect(brief(findings([first], second))).toEqual([`kernel-built ${K57}`]);
    expect(brief(findings([first, second], build([[K58, 'failed']])))).toEqual([`new-failure ${K58}`, `regression build ${K57}..${K58}`]);
  });

  it('a new module version is judged afresh: its first builds and failures are told again, its own regression too', () => {
    const old = build([
      [K56, 'built'],
      [K57, 'failed'],
    ]);
    const events = findings(
      [old],
      build(
        [
          [K56, 'built'],
          [K57, 'failed'],
        ],
        { version: '1.1' },
      ),
    );
    expect(brief(events)).toEqual([`kernel-built ${K56}`, `new-failure ${K57}`, `regression build ${K56}..${K57}`]);
    expect(events.every((e) => 'version' in e && e.version === '1.1')).toBe(true);
  });

  it('a load that fails on the newer kernel while both build: a load regression carrying the load error', () => {
    const first = build([[K56, 'built', { load: 'loaded' }]]);
    const events = findings([first], build([[K57, 'built', { load: 'load-failed', firstError: 'insmod: ERROR: could not insert module hello.ko: Invalid module format' }]]));
    expect(brief(events)).toEqual([`kernel-built ${K57}`, `regression load ${K56}..${K57}`]);
    expect(events[1]).toMatchObject({
      verdict: 'built',
      check: 'load',
      firstError: 'insmod: ERROR: could not insert module hello.ko: Invalid module format',
      sentence: `loads on ${K56}, load-failed since ${K57}`,
    });
  });

  it('series are apart by flavour and arch: a cloud kernel failing does not break the generic series', () => {
    const first = build([[K56, 'built']]);
    const events = findings([first], build([['6.1.0-57-cloud-amd64', 'failed', { flavour: 'cloud-amd64' }]]));
    expect(brief(events)).toEqual(['new-failure 6.1.0-57-cloud-amd64']);
  });
});

describe('buildFindings: the events themselves', () => {
  it('are valid webhook events, round-tripping through the wire format', () => {
    const events = findings(
      [],
      build([
        [K56, 'built'],
        [K57, 'failed'],
      ]),
    );
    for (const e of events) expect(parseWebhookEvent(serializeWebhookEvent(e))).toEqual(e);
  });

  it('have ids named by what they are about: the same findings stated twice (a resumed build) carry the same ids', () => {
    const now = build([
      [K56, 'built'],
      [K57, 'failed'],
    ]);
    const a = findings([], now).map((e) => e.id);
    const b = findings([], now).map((e) => e.id);
    expect(a).toEqual(b);
    expect(new Set(a).size).toBe(a.length);
  });

  it('tell a kernel once even if the build holds it twice', () => {
    const now = build([
      [K56, 'built'],
      [K56, 'built'],
    ]);
    expect(brief(findings([], now))).toEqual([`kernel-built ${K56}`]);
  });
});
