/** Keeps a build's output up to a byte limit, and says so when it drops the rest. */
export class LogBuffer {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    if (this.size >= this.limit) {
      this.truncated = true;
      return;
    }
    const room = this.limit - this.size;
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (kept.length < chunk.length) this.truncated = true;
    this.chunks.push(kept);
    this.size += kept.length;
  }

  note(line: string): void {
    const text = Buffer.from(`[kfarm] ${line}\n`);
    this.chunks.push(text);
    this.size += text.length;
  }

  toBuffer(): Buffer {
    const body = Buffer.concat(this.chunks);
    return this.truncated ? Buffer.concat([body, Buffer.from(`\n[kfarm] log truncated at ${this.limit} bytes\n`)]) : body;
  }
}
