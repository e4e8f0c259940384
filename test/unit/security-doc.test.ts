import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';
import { testTitles } from '../helpers/test-titles.js';

/**
 * docs/security.md is written for a vendor's security review, and every claim in it points at
 * the code that makes it true and the test that guards it. A reviewer follows those pointers,
 * so they are checked here: every link and every backticked src/ or test/ path names a file
 * that exists, every test link quotes the title of a test in that file (as it, test or describe
 * writes it), and every "Checked by" item of a border carries both a code and a test pointer.
 * A test renamed, moved or deleted fails this file until the doc follows it.
 */

const DOC = 'docs/security.md';
/** sections that describe the page or what it leaves out, not a border */
const NOT_BORDERS = ['How to read this page', 'Out of scope', 'Not yet guarded'];

interface TestReference {
  file: string;
  titles: string[];
}

interface DocReferences {
  /** link targets as written, relative to the doc's folder (anchors dropped) */
  links: string[];
  /** backticked src/... and test/... paths, relative to the repository */
  paths: string[];
  tests: TestReference[];
  /** "Checked by" items of a border that lack a code or a test pointer */
  unpointed: string[];
  /** border sections without a single test reference */
  untested: string[];
}

const LINK = /\[[^\]]*\]\(([^)\s]+)\)/g;
/** a test link, then › and one or more “titles” joined by commas, "and" or semicolons */
const TEST_REF = /\]\((\.\.\/test\/[^)\s#]+)\)((?:\s*›\s*“[^”]+”(?:\s*(?:,|;|and)\s*“[^”]+”)*)?)/g;
const CODE_PATH = /`((?:src|test)\/[^`\s:]+)`/g;

/** Pure: every pointer a security page holds, and the items and borders that lack one. */
function docReferences(markdown: string): DocReferences {
  const links = [...markdown.matchAll(LINK)].map((m) => m[1]!).filter((t) => !/^[a-z]+:/i.test(t) && !t.startsWith('#'));
  const paths = [...markdown.matchAll(CODE_PATH)].map((m) => m[1]!);
  const tests = [...markdown.matchAll(TEST_REF)].map((m) => ({
    file: m[1]!.replace(/^\.\.\//, ''),
    titles: [...(m[2] ?? '').matchAll(/“([^”]+)”/g)].map((t) => t[1]!),
  }));
  const unpointed: string[] = [];
  const untested: string[] = [];
  for (const section of markdown.split(/^## /m).slice(1)) {
    const heading = section.slice(0, section.indexOf('\n')).trim();
    if (NOT_BORDERS.includes(heading)) continue;
    if (!new RegExp(TEST_REF.source).test(section)) untested.push(heading);
    for (const item of checkedByItems(section)) {
      const hasCode = /\]\(\.\.\/src\/[^)\s]+\)/.test(item);
      const hasTest = /\]\(\.\.\/test\/[^)\s]+\)\s*›\s*“/.test(item);
      if (!hasCode || !hasTest) unpointed.push(`${heading}: ${item.slice(0, 80)}`);
    }
  }
  return { links: links.map((l) => l.replace(/#.*$/, '')), paths, tests, unpointed, untested };
}

/** The list items after a "**Checked by" line, up to the next bold label or heading. */
function checkedByItems(section: string): string[] {
  const items: string[] = [];
  let inside = false;
  for (const line of section.split('\n')) {
    if (/^\*\*Checked by/.test(line)) inside = true;
    else if (/^(\*\*|#)/.test(line)) inside = false;
    else if (inside && line.startsWith('- ')) items.push(line.slice(2));
    else if (inside && /^\s+\S/.test(line) && items.length > 0) items[items.length - 1] += ` ${line.trim()}`;
  }
  return items;
}

/** What is wrong with the references of a page, checked against the tree under root. */
function referenceProblems(markdown: string, docDir: string, root: string, titlesOf: (file: string) => string[]): string[] {
  const refs = docReferences(markdown);
  const problems: string[] = [];
  for (const link of refs.links) if (!existsSync(path.resolve(docDir, link))) problems.push(`link to a missing file: ${link}`);
  for (const p of refs.paths) if (!existsSync(path.join(root, p))) problems.push(`a path that does not exist: ${p}`);
  for (const ref of refs.tests) {
    if (ref.titles.length === 0) problems.push(`a test link without a quoted test title: ${ref.file}`);
    if (!existsSync(path.join(root, ref.file))) continue;
    const titles = new Set(titlesOf(ref.file).map(normalise));
    for (const title of ref.titles) if (!titles.has(normalise(title))) problems.push(`${ref.file} has no test titled “${title}”`);
  }
  for (const item of refs.unpointed) problems.push(`a "Checked by" item without both a src/ and a test/ pointer: ${item}`);
  for (const heading of refs.untested) problems.push(`a border without a test reference: ${heading}`);
  return problems;
}

const normalise = (title: string) => title.replace(/\s+/g, ' ').trim();
const titlesIn = (root: string) => (file: string) => testTitles(file, readFileSync(path.join(root, file), 'utf8'));

describe('docs/security.md: every pointer leads somewhere', () => {
  it('every link and path exists, and every test it cites exists under the title it quotes', () => {
    const markdown = readFileSync(path.join(packageRoot, DOC), 'utf8');
    const refs = docReferences(markdown);
    // a page that lost its pointers would pass the checks below vacuously
    expect(refs.tests.length).toBeGreaterThan(40);
    expect(refs.links.filter((l) => l.startsWith('../src/')).length).toBeGreaterThan(40);
    expect(referenceProblems(markdown, path.join(packageRoot, 'docs'), packageRoot, titlesIn(packageRoot))).toEqual([]);
  });

  it('the README links to it', () => {
    expect(readFileSync(path.join(packageRoot, 'README.md'), 'utf8')).toContain('](docs/security.md)');
  });

  it('the checker finds a renamed test, a moved file, a test link without a title and an item without a test', () => {
    const markdown = [
      '## A border',
      '**Checked by:**',
      '- names are joined only when plain ([inside-dir.ts](../src/util/inside-dir.ts)); [test](../test/unit/inside-dir.test.ts) › “joins plain names”',
      '- a renamed test ([inside-dir.ts](../src/util/inside-dir.ts)); [test](../test/unit/inside-dir.test.ts) › “joins plain names, renamed”',
      '- a moved file ([gone.ts](../src/util/gone.ts)); [test](../test/unit/inside-dir.test.ts) › “joins plain names”',
      '- a test link without a title ([inside-dir.ts](../src/util/inside-dir.ts)); [test](../test/unit/inside-dir.test.ts)',
      '- only code ([inside-dir.ts](../src/util/inside-dir.ts)), and `src/util/nowhere.ts`',
      '## Out of scope',
      'nothing tested here',
    ].join('\n');
    const problems = referenceProblems(markdown, path.join(packageRoot, 'docs'), packageRoot, titlesIn(packageRoot));
    expect(problems).toEqual([
      'link to a missing file: ../src/util/gone.ts',
      'a path that does not exist: src/util/nowhere.ts',
      'test/unit/inside-dir.test.ts has no test titled “joins plain names, renamed”',
      'a test link without a quoted test title: test/unit/inside-dir.test.ts',
      expect.stringMatching(/^a "Checked by" item without both a src\/ and a test\/ pointer: A border: a test link without a title/),
      expect.stringMatching(/^a "Checked by" item without both a src\/ and a test\/ pointer: A border: only code/),
    ]);
  });
});
