/**
 * One build's progress as the API streams it (server-sent events): every event kept in order
 * (bounded), so a client that connects late, or reconnects with Last-Event-ID, gets what it
 * missed and then what comes. Events are plain JSON: the BuildEvents of the coordinator plus
 * the build's own state changes, `end` last.
 */
export interface FeedEvent {
  id: number;
  type: string;
  data: unknown;
}

/** a 600-kernel build sends about 1,800 events; past this the oldest go (a late client still gets `end`) */
const MAX_KEPT = 20_000;

/** where a build stands, from its events: what the dashboard's live section shows */
export interface FeedProgress {
  total: number;
  done: number;
  running: number;
  failed: number;
}

export class BuildFeed {
  private readonly events: FeedEvent[] = [];
  private readonly running = new Set<string>();
  private readonly counts = { total: 0, done: 0, failed: 0 };
  private readonly listeners = new Set<(e: FeedEvent) => void>();
  private next = 1;
  private ended = false;

  push(type: string, data: unknown): void {
    if (this.ended) return;
    const event = { id: this.next++, type, data };
    this.events.push(event);
    if (this.events.length > MAX_KEPT) this.events.splice(0, this.events.length - MAX_KEPT);
    if (type === 'end') this.ended = true;
    this.count(type, data as { targets?: unknown[]; kernel?: string; state?: string; record?: { verdict?: string } });
    for (const l of this.listeners) l(event);
  }

  private count(type: string, d: { targets?: unknown[]; kernel?: string; state?: string; record?: { verdict?: string } }): void {
    if (type === 'plan') this.counts.total += d.targets?.length ?? 0;
    else if (type === 'kernel' && d.kernel) {
      if (d.state === 'queued') this.running.delete(d.kernel);
      else this.running.add(d.kernel);
    } else if (type === 'kernel-done' && d.kernel) {
      this.running.delete(d.kernel);
      this.counts.done++;
      if (d.record?.verdict === 'failed') this.counts.failed++;
    }
  }

  progress(): FeedProgress {
    return { ...this.counts, running: this.running.size };
  }

  get done(): boolean {
    return this.ended;
  }

  /** the events after `afterId` now, then each new one; returns the unsubscribe */
  follow(afterId: number, listener: (e: FeedEvent) => void): () => void {
    for (const e of this.events) if (e.id > afterId) listener(e);
    if (this.ended) return () => undefined;
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
