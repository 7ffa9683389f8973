import { describe, expect, it } from 'vitest';
import { renewHold } from '../src/hold-renewal.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('renewHold', () => {
  it('renews repeatedly until stopped, and not after', async () => {
    let calls = 0;
    const stop = renewHold(5, async () => {
      calls++;
      return true;
    });
    await expect.poll(() => calls, { timeout: 5000 }).toBeGreaterThanOrEqual(3);
    await stop();
    const atStop = calls;
    await sleep(50);
    expect(calls).toBe(atStop);
  });

  it('stops by itself once the hold is lost', async () => {
    let calls = 0;
    const stop = renewHold(5, async () => {
      calls++;
      return false;
    });
    await expect.poll(() => calls, { timeout: 5000 }).toBe(1);
    await sleep(50);
    expect(calls).toBe(1);
    await stop();
  });

  it('keeps trying after a failed renewal, one call at a time', async () => {
    let calls = 0;
    let running = 0;
    let overlapped = false;
    const stop = renewHold(2, async () => {
      calls++;
      running++;
      if (running > 1) overlapped = true;
      await sleep(10);
      running--;
      if (calls === 1) throw new Error('connection lost');
      return true;
    });
    await expect.poll(() => calls, { timeout: 5000 }).toBeGreaterThanOrEqual(3);
    await stop();
    expect(overlapped).toBe(false);
    expect(running).toBe(0); // stop() waited for the call in flight
  });
});
