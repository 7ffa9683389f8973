import { describe, expect, it } from 'vitest';
import { KeyedLock } from '../src/keyed-lock.js';

/** Lets other queued microtasks and timers run. */
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A promise with its resolve function exposed. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe('KeyedLock', () => {
  it('runs tasks on one key one at a time, in arrival order', async () => {
    const lock = new KeyedLock();
    let running = 0;
    let maxRunning = 0;
    const started: number[] = [];
    const finished: number[] = [];
    const runs = Array.from({ length: 20 }, (_, i) =>
      lock.run('k', async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        started.push(i);
        // Yield several times, with varied lengths, so a broken lock would interleave.
        for (let j = 0; j < (i % 4) + 1; j++) await tick();
        finished.push(i);
        running--;
        return i * 10;
      }),
    );
    expect(await Promise.all(runs)).toEqual(Array.from({ length: 20 }, (_, i) => i * 10));
    expect(maxRunning).toBe(1);
    expect(started).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(finished).toEqual(started);
  });

  it('does not start a queued task before the running one finishes', async () => {
    const lock = new KeyedLock();
    const first = gate();
    const events: string[] = [];
    const a = lock.run('k', async () => {
      events.push('a start');
      await first.promise;
      events.push('a end');
    });
    const b = lock.run('k', async () => {
      events.push('b start');
    });
    for (let i = 0; i < 5; i++) await tick();
    expect(events).toEqual(['a start']);
    first.open();
    await Promise.all([a, b]);
    expect(events).toEqual(['a start', 'a end', 'b start']);
  });

  it('runs tasks on different keys concurrently', async () => {
    const lock = new KeyedLock();
    const release = gate();
    let running = 0;
    let maxRunning = 0;
    const runs = ['a', 'b', 'c'].map((key) =>
      lock.run(key, async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await release.promise;
        running--;
      }),
    );
    for (let i = 0; i < 5; i++) await tick();
    // All three are inside their tasks at once, although none can finish yet.
    expect(running).toBe(3);
    expect(lock.activeKeys).toBe(3);
    release.open();
    await Promise.all(runs);
    expect(maxRunning).toBe(3);
  });

  it('does not let a rejecting task block the next one', async () => {
    const lock = new KeyedLock();
    const failure = new Error('boom');
    const first = lock.run('k', async () => {
      await tick();
      throw failure;
    });
    const second = lock.run('k', async () => 'second ran');
    const third = lock.run('k', () => Promise.reject(new Error('also boom')));
    const fourth = lock.run('k', async () => 'fourth ran');
    // Attach every expectation at once, so no rejection is ever left unhandled.
    await Promise.all([
      expect(first).rejects.toBe(failure),
      expect(second).resolves.toBe('second ran'),
      expect(third).rejects.toThrow('also boom'),
      expect(fourth).resolves.toBe('fourth ran'),
    ]);
    expect(lock.activeKeys).toBe(0);
  });

  it('holds no keys once every task has finished', async () => {
    const lock = new KeyedLock();
    expect(lock.activeKeys).toBe(0);
    const release = gate();
    const runs = [
      lock.run('a', () => release.promise),
      lock.run('a', async () => undefined),
      lock.run('b', () => release.promise),
      lock.run('c', async () => {
        throw new Error('x');
      }),
    ];
    expect(lock.activeKeys).toBe(3);
    release.open();
    await Promise.allSettled(runs);
    expect(lock.activeKeys).toBe(0);
    // And it is usable again afterwards.
    await expect(lock.run('a', async () => 1)).resolves.toBe(1);
    expect(lock.activeKeys).toBe(0);
  });
});
