/**
 * Pure: at most `size` builds compile at once. A worker that takes one job more than it has
 * slots prepares that job's container (create, start: the engine's part of a job) while the
 * others compile, and feeds it its source the moment a slot frees.
 */
export interface Slot {
  /** resolves when the slot is this holder's */
  granted: Promise<void>;
  /** gives the slot back, or withdraws the request if it was not granted yet; idempotent */
  release(): void;
}

export class CompileSlots {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`compile slots: ${size} is not a positive integer`);
    this.free = size;
  }

  acquire(): Slot {
    let state: 'waiting' | 'held' | 'released' = 'waiting';
    let grant!: () => void;
    const granted = new Promise<void>((resolve) => {
      grant = () => {
        state = 'held';
        resolve();
      };
    });
    const request = () => grant();
    if (this.free > 0) {
      this.free--;
      grant();
    } else {
      this.waiting.push(request);
    }
    return {
      granted,
      release: () => {
        if (state === 'released') return;
        if (state === 'waiting') {
          const i = this.waiting.indexOf(request);
          if (i >= 0) this.waiting.splice(i, 1);
        } else this.handOn();
        state = 'released';
      },
    };
  }

  /** slots free now (for tests) */
  get available(): number {
    return this.free;
  }

  private handOn(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}
