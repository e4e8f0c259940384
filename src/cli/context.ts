import type { LiveStatus } from './live-status.js';

/** What commands get from the CLI shell: output channels, the interrupt signal, the exit code. */
export interface CliContext {
  out: (text: string) => void;
  /** a plain progress line on stderr */
  progress: (line: string) => void;
  /** a live status on stderr: redrawn in place on a terminal, plain lines off one (see live-status.ts) */
  live: () => LiveStatus;
  signal: AbortSignal;
  setExitCode: (code: number) => void;
}
