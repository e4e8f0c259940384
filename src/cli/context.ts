/** What commands get from the CLI shell: output channels, the interrupt signal, the exit code. */
export interface CliContext {
  out: (text: string) => void;
  progress: (line: string) => void;
  signal: AbortSignal;
  setExitCode: (code: number) => void;
}
