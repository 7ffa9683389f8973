import { describe, expect, it } from 'vitest';
import { StoreClosedError } from '../src/errors.js';
import { WakeSignal } from '../src/wake-signal.js';

describe('WakeSignal', () => {
  it('wakes every sleeper and counts wakes', async () => {
    const wakeup = new WakeSignal();
    const before = wakeup.generation;
    const sleepers = [wakeup.wait(undefined), wakeup.wait(60_000)];
    wakeup.wake();
    await Promise.all(sleepers);
    expect(wakeup.generation).toBe(before + 1);
  });

  it('resolves after the timeout without a wake', async () => {
    const started = Date.now();
    await new WakeSignal().wait(20);
    expect(Date.now() - started).toBeGreaterThanOrEqual(15);
  });

  it('rejects with the abort reason, and with StoreClosedError when closing, also when already aborted', async () => {
    const wakeup = new WakeSignal();
    const abort = new AbortController();
    const waiting = wakeup.wait(undefined, abort.signal);
    abort.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
    await expect(wakeup.wait(undefined, abort.signal)).rejects.toThrow('stop');
    const closing = new AbortController();
    const sleeping = wakeup.wait(undefined, undefined, closing.signal);
    closing.abort();
    await expect(sleeping).rejects.toBeInstanceOf(StoreClosedError);
    await expect(wakeup.wait(undefined, undefined, closing.signal)).rejects.toBeInstanceOf(StoreClosedError);
  });
});
