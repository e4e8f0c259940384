import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/process/run.js';
import { renderJunit } from '../../src/report/junit.js';
import { xmlAttr, xmlCdata, xmlChars, xmlText } from '../../src/report/xml-text.js';
import { packageRoot } from '../../src/paths.js';
import { HOSTILE, HOSTILE_IN_XML, sampleReport } from '../fixtures/junit/sample-report.js';

/**
 * junit.xml is read by GitLab and Jenkins: it must parse with a real XML parser, validate
 * against a JUnit schema with libxml2's xmllint, and carry strangers' text (control characters,
 * `]]>`, markup) through unchanged but for what XML cannot hold.
 */
const XSD = path.join(packageRoot, 'test', 'fixtures', 'junit', 'junit.xsd');
const FAILED_LOG = 'logs/6.12.117+deb12-amd64.log';
const EXCERPT = `cc -c hello.c\nhello.c:3:1: error: ${HOSTILE}\nmake: *** [Makefile:4: hello.o] Error 1 ]]>`;

interface Outcome {
  message?: string;
  type?: string;
  __cdata?: string[];
}
interface Testcase {
  classname: string;
  name: string;
  time: string;
  failure?: Outcome;
  error?: Outcome;
  skipped?: Outcome;
  'system-out'?: string;
}
interface Testsuite {
  name: string;
  tests: string;
  failures: string;
  errors: string;
  skipped: string;
  time: string;
  timestamp: string;
  hostname: string;
  testcase: Testcase[];
}
interface Parsed {
  testsuites: { tests: string; failures: string; errors: string; time: string; testsuite: Testsuite[] };
}

function render(): string {
  return renderJunit({ report: sampleReport(), hostname: 'ci-runner-1', excerpts: new Map([[FAILED_LOG, EXCERPT]]) });
}

function parse(xml: string): Parsed {
  expect(XMLValidator.validate(xml)).toBe(true);
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '',
    htmlEntities: true,
    parseAttributeValue: false,
    parseTagValue: false,
    trimValues: false,
    cdataPropName: '__cdata',
    isArray: (name) => ['testsuite', 'testcase', '__cdata'].includes(name),
  });
  return parser.parse(xml) as Parsed;
}

async function xmllint(xml: string): Promise<{ exitCode: number; stderr: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kfarm-junit-'));
  const file = path.join(dir, 'junit.xml');
  await writeFile(file, xml);
  return run('xmllint', ['--noout', '--schema', XSD, file], { allowFailure: true });
}

const cdata = (o: Outcome | undefined) => (o?.__cdata ?? []).join('');
const testcase = (doc: Parsed, classname: string, name: string) => {
  const found = doc.testsuites.testsuite.flatMap((s) => s.testcase).find((c) => c.classname === classname && c.name === name);
  if (!found) throw new Error(`no testcase ${classname} ${name}`);
  return found;
};

describe('junit.xml', () => {
  it('validates against the JUnit schema with xmllint (and the schema does refuse a suite without counts)', async () => {
    const valid = await xmllint(render());
    expect(valid.exitCode, valid.stderr).toBe(0);
    expect(valid.stderr).toContain('validates');
    const broken = await xmllint('<testsuites><testsuite name="x"><testcase name="y"/></testsuite></testsuites>');
    expect(broken.exitCode).not.toBe(0);
    expect(broken.stderr).toMatch(/attribute 'tests' is required/);
  });

  it('has one testcase per (module, kernel) classed <module>.<release>-<arch> and named for the kernel, plus one per load verification', () => {
    const doc = parse(render());
    const suites = doc.testsuites.testsuite;
    expect(suites.map((s) => s.name)).toEqual(['hello-1.0.0', 'only61-2.0']);
    const cases = suites.flatMap((s) => s.testcase.map((c) => `${c.classname} ${c.name}`));
    expect(cases).toEqual([
      'hello.debian-12-amd64 6.1.0-57-amd64',
      'hello.debian-12-amd64 6.1.0-57-amd64 load',
      'hello.debian-12-amd64 6.1.0-56-amd64',
      'hello.debian-12-amd64 6.1.0-56-amd64 load',
      'hello.debian-12-amd64 6.12.117+deb12-amd64',
      'hello.debian-13-arm64 7.3.4+deb13-arm64',
      'hello.debian-13-arm64 7.3.4+deb13-arm64 load',
      'only61.debian-12-amd64 6.1.0-57-amd64',
      'only61.debian-12-amd64 6.12.117+deb12-amd64',
      'only61.debian-13-arm64 7.3.4+deb13-arm64',
    ]);
  });

  it('counts tests, failures, errors and skips per suite and in total; times in seconds; timestamp and hostname set', () => {
    const doc = parse(render());
    const [hello, only61] = doc.testsuites.testsuite;
    expect([hello?.tests, hello?.failures, hello?.errors, hello?.skipped]).toEqual(['7', '2', '0', '1']);
    expect([only61?.tests, only61?.failures, only61?.errors, only61?.skipped]).toEqual(['3', '0', '1', '1']);
    expect([doc.testsuites.tests, doc.testsuites.failures, doc.testsuites.errors]).toEqual(['10', '2', '1']);
    expect(doc.testsuites.time).toBe('123.456');
    expect(testcase(doc, 'hello.debian-12-amd64', '6.12.117+deb12-amd64').time).toBe('12.345');
    expect(testcase(doc, 'hello.debian-12-amd64', '6.1.0-56-amd64 load').time).toBe('9.300');
    expect(hello?.timestamp).toBe('2026-11-29T01:00:00.000Z');
    expect(hello?.hostname).toBe('ci-runner-1');
  });

  it('a failed build is a failure with its reason and first error, and the log path and excerpt in its text', () => {
    const failed = testcase(parse(render()), 'hello.debian-12-amd64', '6.12.117+deb12-amd64');
    expect(failed.failure?.type).toBe('make-failed');
    expect(failed.failure?.message).toBe(`make-failed: ${HOSTILE_IN_XML}`);
    const text = cdata(failed.failure);
    expect(text).toContain(`first error: ${HOSTILE_IN_XML}`);
    expect(text).toContain(`log: ${FAILED_LOG}`);
    expect(text).toContain(`--- last lines of ${FAILED_LOG} ---\ncc -c hello.c\nhello.c:3:1: error: ${HOSTILE_IN_XML}\nmake: *** [Makefile:4: hello.o] Error 1 ]]>`);
  });

  it('an excluded kernel is skipped with the directive that excluded it; an infrastructure failure is an error', () => {
    const doc = parse(render());
    const excluded = testcase(doc, 'only61.debian-12-amd64', '6.12.117+deb12-amd64');
    expect(excluded.skipped?.message).toBe('build-exclusive: BUILD_EXCLUSIVE_KERNEL="^6\\.1\\." does not match 6.12.117+deb12-amd64');
    expect(excluded.failure).toBeUndefined();
    const infra = testcase(doc, 'only61.debian-13-arm64', '7.3.4+deb13-arm64');
    expect(infra.error?.type).toBe('worker-error');
    expect(infra.error?.message).toBe('worker-error: the worker went away');
  });

  it('load verification: loaded passes, load-failed is a failure with the kernel log line, not-verified is skipped with why', () => {
    const doc = parse(render());
    const loaded = testcase(doc, 'hello.debian-12-amd64', '6.1.0-57-amd64 load');
    expect(loaded.failure ?? loaded.skipped ?? loaded.error).toBeUndefined();
    expect(loaded['system-out']).toContain('accel: kvm');
    const refused = testcase(doc, 'hello.debian-12-amd64', '6.1.0-56-amd64 load');
    expect(refused.failure?.message).toBe('unknown-symbol: hello: Unknown symbol foo (err -2)');
    expect(cdata(refused.failure)).toContain('accel: tcg (software emulation)');
    const unverified = testcase(doc, 'hello.debian-13-arm64', '7.3.4+deb13-arm64 load');
    expect(unverified.skipped?.message).toBe('no-kernel-image');
    // the build of the same kernel passed: load verification is a testcase of its own
    expect(testcase(doc, 'hello.debian-12-amd64', '6.1.0-56-amd64').failure).toBeUndefined();
  });

  it('hostile text cannot close an element, open markup or break the document', () => {
    const xml = render();
    expect(xml).not.toContain('<script>alert(1)</script>&amp;"\'\u202eend"'); // never raw in an attribute
    expect(xml.match(/<failure /g)?.length).toBe(2);
    // inside CDATA `</failure><script>` is text: the parser still sees exactly two failures and no script element
    const cases = parse(xml).testsuites.testsuite.flatMap((s) => s.testcase);
    expect(cases.filter((c) => c.failure).length).toBe(2);
    expect(JSON.stringify(cases)).not.toContain('"script":');
    // eslint-disable-next-line no-control-regex -- characters XML cannot hold are what is checked for
    expect(xml).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\uffff]/);
  });
});

describe('XML text', () => {
  it('removes what XML 1.0 cannot carry and keeps the rest', () => {
    expect(xmlChars('a\u0000b\u0008c\td\ne\rf\u000bg\ud800h\udc00i\ufffej\uffffk😀l\u0085')).toBe('ab c\td\ne\rfghijk😀l\u0085'.replace(' ', ''));
  });
  it('escapes text, attributes and CDATA so each reads back exactly', () => {
    const parser = new XMLParser({
      ignoreAttributes: false,
      attributeNamePrefix: '',
      htmlEntities: true,
      trimValues: false,
      parseTagValue: false,
      parseAttributeValue: false,
      cdataPropName: 'c',
      isArray: (n) => n === 'c',
    });
    const s = 'a]]>b<c>&d"e\'f\tg\nh]]]>';
    const doc = parser.parse(`<r a="${xmlAttr(s)}"><t>${xmlText(s)}</t><d>${xmlCdata(s)}</d></r>`) as { r: { a: string; t: string; d: { c: string[] } } };
    expect(doc.r.a).toBe(s);
    expect(doc.r.t).toBe(s);
    expect(doc.r.d.c.join('')).toBe(s);
  });
});
