import { describe, expect, it } from 'vitest';
import { CompileSlots } from '../../src/worker/compile-slots.js';

const settled = async (p: Promise<void>) => {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
};

describe('CompileSlots', () => {
  it('grants up to its size at once, then in order as slots are released', async () => {
    const slots = new CompileSlots(2);
    const a = slots.acquire();
    const b = slots.acquire();
    const c = slots.acquire();
    const d = slots.acquire();
    expect(await settled(a.granted)).toBe(true);
    expect(await settled(b.granted)).toBe(true);
    expect(await settled(c.granted)).toBe(false);
    b.release();
    expect(await settled(c.granted)).toBe(true);
    expect(await settled(d.granted)).toBe(false);
    a.release();
    expect(await settled(d.granted)).toBe(true);
    c.release();
    d.release();
    expect(slots.available).toBe(2);
  });

  it('a request withdrawn before its grant takes no slot; releasing twice gives back one', async () => {
    const slots = new CompileSlots(1);
    const a = slots.acquire();
    const b = slots.acquire();
    const c = slots.acquire();
    b.release();
    a.release();
    a.release();
    expect(await settled(c.granted)).toBe(true);
    expect(await settled(b.granted)).toBe(false);
    expect(slots.available).toBe(0);
    c.release();
    expect(slots.available).toBe(1);
  });

  it('refuses a size that is not a positive integer', () => {
    expect(() => new CompileSlots(0)).toThrow(RangeError);
  });
});
