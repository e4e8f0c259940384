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

export class BuildFeed {
  private readonly events: FeedEvent[] = [];
  private readonly listeners = new Set<(e: FeedEvent) => void>();
  private next = 1;
  private ended = false;

  push(type: string, data: unknown): void {
    if (this.ended) return;
    const event = { id: this.next++, type, data };
    this.events.push(event);
    if (this.events.length > MAX_KEPT) this.events.splice(0, this.events.length - MAX_KEPT);
    if (type === 'end') this.ended = true;
    for (const l of this.listeners) l(event);
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
