import { describe, expect, it } from 'vitest';
import { holdWhile } from '../src/hold-renewal.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('holdWhile', () => {
  it('renews repeatedly while the work runs, and not after; answers as the work does', async () => {
    let calls = 0;
    const result = await holdWhile(
      {
        intervalMs: 5,
        renew: async () => {
          calls++;
          return true;
        },
      },
      async () => {
        await expect.poll(() => calls, { timeout: 5000 }).toBeGreaterThanOrEqual(3);
        return 'done';
      },
    );
    expect(result).toBe('done');
    const atEnd = calls;
    await sleep(50);
    expect(calls).toBe(atEnd);
  });

  it('stops by itself once the hold is lost', async () => {
    let calls = 0;
    await holdWhile(
      {
        intervalMs: 5,
        renew: async () => {
          calls++;
          return false;
        },
      },
      async () => {
        await expect.poll(() => calls, { timeout: 5000 }).toBe(1);
        await sleep(50);
      },
    );
    expect(calls).toBe(1);
  });

  it('stops for good when `until` aborts, while the work goes on', async () => {
    let calls = 0;
    const closing = new AbortController();
    await holdWhile(
      {
        intervalMs: 5,
        renew: async () => {
          calls++;
          return true;
        },
        until: closing.signal,
      },
      async () => {
        await expect.poll(() => calls, { timeout: 5000 }).toBeGreaterThanOrEqual(1);
        closing.abort();
        const atAbort = calls;
        await sleep(50);
        expect(calls).toBe(atAbort);
      },
    );
  });

  it('keeps trying after a failed renewal, one call at a time, and waits for the call in flight', async () => {
    let calls = 0;
    let running = 0;
    let overlapped = false;
    const work = holdWhile(
      {
        intervalMs: 2,
        renew: async () => {
          calls++;
          running++;
          if (running > 1) overlapped = true;
          await sleep(10);
          running--;
          if (calls === 1) throw new Error('connection lost');
          return true;
        },
      },
      async () => {
        await expect.poll(() => calls, { timeout: 5000 }).toBeGreaterThanOrEqual(3);
        throw new Error('handler failed');
      },
    );
    await expect(work).rejects.toThrow('handler failed');
    expect(overlapped).toBe(false);
    expect(running).toBe(0);
  });
});
