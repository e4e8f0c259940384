import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';
import type { BuildReport } from '../../src/report/report.js';
import { example, fixture, isolatedEnv, KFARM_BIN, kfarm, tempDir } from '../helpers/kfarm-cli.js';

const ESC = '\u001b';
const STATUS = / done · \d+ running · \d+ queued · \d+ failed · /;

/** Runs the CLI in a real pseudo-terminal (util-linux script), stdout and stderr both on it. */
async function kfarmOnTerminal(args: string[], env: Record<string, string>): Promise<{ exitCode: number; raw: string }> {
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const command = ['node', KFARM_BIN, ...args].map(quote).join(' ');
  const r = await execa('script', ['-qfec', command, '/dev/null'], { env, stdin: 'ignore', reject: false, cwd: packageRoot, timeout: 600_000 });
  return { exitCode: r.exitCode ?? -1, raw: String(r.stdout) };
}

/**
 * What a terminal shows at the end: applies the sequences log-update writes (erase line, cursor
 * up, column 1) and carriage returns. Anything else left in the text fails the caller's checks.
 */
function finalScreen(raw: string): string[] {
  const rows: string[] = [''];
  let row = 0;
  // eslint-disable-next-line no-control-regex -- ESC starts the terminal sequences this parses
  const tokens = raw.split(/(\u001b\[\d*[A-Za-z]|\r|\n)/);
  for (const t of tokens) {
    if (t === '\n') {
      row++;
      rows[row] ??= '';
    } else if (t === '\r' || t === `${ESC}[G`) {
      // column 1: the next text overwrites the row, which log-update erased first
    } else if (t === `${ESC}[2K`) rows[row] = '';
    // eslint-disable-next-line no-control-regex -- ESC starts the terminal sequences this parses
    else if (/^\u001b\[\d*A$/.test(t)) row = Math.max(0, row - Number(t.slice(2, -1) || 1));
    else if (t.startsWith(`${ESC}[`))
      rows[row] += `<${t.slice(1)}>`; // unexpected: left visible
    else rows[row] += t;
  }
  return rows.filter((r) => r.trim() !== '');
}

describe('build progress on a terminal and off one (examples/hello, the default debian-12 kernels)', () => {
  let env: Record<string, string>;
  let kernels: string[];

  beforeAll(async () => {
    env = await isolatedEnv('progress');
    kernels = (env.KFARM_KERNELS ?? '').split(',');
  });

  it('on a terminal: one status redrawn in place, then the table grouped by release and arch', async () => {
    const out = await tempDir('progress-tty');
    const { exitCode, raw } = await kfarmOnTerminal(['build', example('hello'), '--out', out], env);
    expect(exitCode, raw).toBe(0);
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
    expect(report.kernels.length).toBe(kernels.length);
    // log-update's erase sequences: the status was drawn and redrawn over itself
    expect(raw).toContain(`${ESC}[2K${ESC}[1A${ESC}[2K${ESC}[G`);
    expect(raw.split(`/${kernels.length} done · `).length - 1).toBeGreaterThanOrEqual(2);
    expect(raw).toMatch(new RegExp(`[1-9]/${kernels.length} done · \\d running · \\d queued · 0 failed · \\d+ s elapsed · ~\\d+ s left`)); // an estimate once one finished
    // a built kernel is counted in the status, not printed
    expect(raw).not.toMatch(/\[\d+\/\d+\] \S+: built/);
    const screen = finalScreen(raw);
    expect(screen.join('\n')).not.toMatch(STATUS); // the status is gone once the build ended
    expect(screen.join('\n')).not.toContain('<');
    expect(screen).toContain(`debian-12/amd64: ${kernels.length} built, 0 excluded, 0 failed`);
    expect(screen.join('\n')).toMatch(/KERNEL\s+VERDICT\s+TIME/); // 3 kernels: auto is the full table
    for (const row of report.kernels) expect(row).toMatchObject({ release: 'debian-12', arch: 'x86_64', debianArch: 'amd64' });
  }, 900_000);

  it('on a terminal: a failure stays on screen as a line of its own, the summary lists only failed kernels', async () => {
    const out = await tempDir('progress-fail');
    const { exitCode, raw } = await kfarmOnTerminal(['build', fixture('fails-on-612'), '--out', out, '--table', 'summary'], env);
    expect(exitCode, raw).toBe(1);
    const screen = finalScreen(raw);
    const failedKernel = kernels.find((k) => k.startsWith('6.12.')) ?? 'none';
    expect(
      screen.some((l) => /^\[\d\/\d\] 6\.12\.\S+: failed \(make-failed\) in .*fails612 does not support kernel 6\.12/.test(l)),
      screen.join('\n'),
    ).toBe(true);
    expect(screen).toContain(`debian-12/amd64: ${kernels.length - 1} built, 0 excluded, 1 failed`);
    expect(screen.filter((l) => l.includes(failedKernel)).length).toBe(2); // the progress line and the table row
    expect(screen.find((l) => l.startsWith(`${failedKernel} `))).toMatch(/failed\s+\S+ m?s\s+make-failed: .*fails612 does not support/);
    for (const k of kernels.filter((k) => k !== failedKernel)) expect(screen.join('\n')).not.toContain(k);
    expect(screen.join('\n')).not.toMatch(STATUS);
  }, 900_000);

  it('piped: no escape sequence, no status, one plain line per finished kernel', async () => {
    const out = await tempDir('progress-pipe');
    const r = await kfarm(['build', example('hello'), '--out', out, '--no-cache', '--table', 'summary'], env);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(ESC);
    expect(r.stderr).not.toMatch(STATUS);
    const finished = r.stderr.split('\n').filter((l) => /^\[\d+\/\d+\] /.test(l));
    expect(finished.length).toBe(kernels.length);
    expect(finished.map((l) => l.replace(/^\[\d+\/\d+\] (\S+): .*$/, '$1')).sort()).toEqual([...kernels].sort());
    for (const l of finished) expect(l).toMatch(/: built in \S+ m?s$/);
    expect(r.stdout).toContain(`debian-12/amd64: ${kernels.length} built, 0 excluded, 0 failed`);
    expect(r.stdout).not.toMatch(/KERNEL\s+VERDICT/); // summary with nothing failed: no kernel rows
  }, 900_000);
});
