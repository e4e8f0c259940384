import { execa } from 'execa';
import { KfarmError } from '../errors/kfarm-error.js';

/** The one door to child processes. */
export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  input?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Do not throw on a non-zero exit; the caller reads exitCode. */
  allowFailure?: boolean;
}

export async function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  try {
    const result = await execa(file, args, {
      cwd: options.cwd,
      input: options.input,
      env: options.env,
      timeout: options.timeoutMs,
      reject: false,
      stripFinalNewline: true,
    });
    if (result.failed && result.exitCode === undefined) {
      throw new KfarmError('COMMAND_FAILED', `${file} could not run: ${result.shortMessage}`, {
        context: { command: [file, ...args].join(' ') },
        hint: result.timedOut ? 'It timed out.' : `Is ${file} installed and on PATH?`,
      });
    }
    const out = { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
    if (out.exitCode !== 0 && !options.allowFailure) {
      throw new KfarmError('COMMAND_FAILED', `${file} exited with status ${out.exitCode}: ${lastLine(out.stderr || out.stdout)}`, {
        context: { command: [file, ...args].join(' ') },
      });
    }
    return out;
  } catch (err) {
    if (err instanceof KfarmError) throw err;
    throw new KfarmError('COMMAND_FAILED', `${file} could not run`, { cause: err, context: { command: file } });
  }
}

/**
 * Starts a long-lived process (the private redis-server) detached from this one: it outlives
 * us when other processes still use it, and a terminal's Ctrl-C does not reach it.
 */
export function spawnDaemon(file: string, args: readonly string[]): { pid: number | undefined; stop: () => Promise<void>; exited: Promise<number | undefined> } {
  const child = execa(file, args, { reject: false, stdio: 'ignore', detached: true, cleanup: false });
  child.unref();
  const exited = child.then((r) => r.exitCode);
  return {
    pid: child.pid,
    exited,
    stop: async () => {
      child.ref(); // keep this process alive until the daemon is gone
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}

/** Runs a command whose stdout is a stream (tar of a debootstrap root), for piping. */
export function runStream(file: string, args: readonly string[]): { stdout: NodeJS.ReadableStream; done: Promise<void> } {
  const child = execa(file, args, { reject: false, stdout: 'pipe', stderr: 'pipe', buffer: { stdout: false, stderr: true } });
  const done = child.then((result) => {
    if (result.exitCode !== 0) {
      throw new KfarmError('COMMAND_FAILED', `${file} exited with status ${result.exitCode}: ${String(result.stderr).trim().split('\n').pop() ?? ''}`, {
        context: { command: [file, ...args].join(' ') },
      });
    }
  });
  if (!child.stdout) throw new KfarmError('COMMAND_FAILED', `${file}: no stdout`);
  return { stdout: child.stdout, done };
}
