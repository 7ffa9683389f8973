import { createStore, Event, InvalidArgumentError, StoreClosedError, type Backend } from '../src/index.js';
import { describe, expect, it } from 'vitest';
import { createMemoryStore, MemoryBackend } from '../src/memory/index.js';

type Events = { Added: { sku: string; qty: number; tags?: string[] } };

describe('Store (memory backend)', () => {
  it('createStore rejects something that is not a backend', () => {
    for (const bad of [undefined, null, 'memory', 42, {}, { append: 'not a function' }]) {
      expect(() => createStore(bad as unknown as Backend)).toThrow(InvalidArgumentError);
    }
    expect(() => createStore({} as Backend)).toThrow(/backend: must implement the Backend contract/);
    expect(() => createStore(new MemoryBackend())).not.toThrow();
  });

  it('returns frozen Event instances whose payload is decoded once', async () => {
    const store = createMemoryStore<Events>();
    const when = new Date('2024-05-06T07:08:09.123Z');
    const appended = await store.appendEvents(['order', '1'], 0, [
      { type: 'Added', data: { sku: 'a', qty: 1, tags: ['x'] }, timestamp: when },
      { type: 'Added', data: { sku: 'b', qty: 2 } },
    ]);
    const loaded = await store.getEvents(['order', '1']);

    for (const events of [appended, loaded]) {
      expect(events).toHaveLength(2);
      for (const event of events) {
        expect(event).toBeInstanceOf(Event);
        expect(Object.isFrozen(event)).toBe(true);
        expect(event.aggregateId).toEqual(['order', '1']);
        expect(event.timestamp).toBeInstanceOf(Date);
      }
      const [first] = events;
      expect(first?.payload).toEqual({ sku: 'a', qty: 1, tags: ['x'] });
      // The same decoded object on every read: decoded once, then cached.
      expect(first?.payload).toBe(first?.payload);
      expect(first?.timestamp.getTime()).toBe(when.getTime());
      expect(() => {
        (first as unknown as { sequence: number }).sequence = 9;
      }).toThrow(TypeError);
      expect(first?.sequence).toBe(0);
    }
    expect(loaded[1]?.sequence).toBe(1);
  });

  it('does not let a payload mutation after append change what is stored', async () => {
    const store = createMemoryStore<Events>();
    const data = { sku: 'a', qty: 1, tags: ['x'] };
    const input = { type: 'Added' as const, data };
    const [stored] = await store.appendEvents(['order', '2'], 0, [input]);
    data.qty = 99;
    data.tags.push('y');
    expect(stored?.payload).toEqual({ sku: 'a', qty: 1, tags: ['x'] });
    expect((await store.getEvents(['order', '2']))[0]?.payload).toEqual({ sku: 'a', qty: 1, tags: ['x'] });
    // The caller's object was not given a sequence or an aggregate ID.
    expect(input).toEqual({ type: 'Added', data });
  });

  it('Event.toJSON has the documented shape', async () => {
    const store = createMemoryStore<Events>();
    const when = new Date('2024-01-02T03:04:05.006Z');
    await store.appendEvents(['order', '3'], 0, [{ type: 'Added', data: { sku: 's', qty: 3 }, timestamp: when }]);
    const [event] = await store.getEvents(['order', '3']);
    expect(event?.toJSON()).toEqual({
      type: 'Added',
      aggregateId: ['order', '3'],
      sequence: 0,
      position: 1,
      timestamp: '2024-01-02T03:04:05.006Z',
      data: '{"sku":"s","qty":3}',
    });
    expect(JSON.parse(JSON.stringify(event))).toEqual({
      type: 'Added',
      aggregateId: ['order', '3'],
      sequence: 0,
      position: 1,
      timestamp: '2024-01-02T03:04:05.006Z',
      data: '{"sku":"s","qty":3}',
    });
    // toJSON does not expose the cached payload.
    expect(Object.keys(event?.toJSON() ?? {})).toEqual(['type', 'aggregateId', 'sequence', 'position', 'timestamp', 'data']);
  });

  it('rejects a pending consumeArchive with StoreClosedError when the store closes', async () => {
    const store = createMemoryStore<Events>();
    let called = false;
    const pending = store.consumeArchive(() => {
      called = true;
    });
    const second = store.consumeArchive(() => {
      called = true;
    });
    // Let both reach their wait.
    await new Promise((resolve) => setImmediate(resolve));
    await store.close();
    await expect(pending).rejects.toBeInstanceOf(StoreClosedError);
    await expect(second).rejects.toBeInstanceOf(StoreClosedError);
    expect(called).toBe(false);
    await expect(store.consumeArchive(() => undefined)).rejects.toBeInstanceOf(StoreClosedError);
  });

  it('a pending consumeArchive with its own signal also ends on close', async () => {
    const store = createMemoryStore<Events>();
    const controller = new AbortController();
    const pending = store.consumeArchive(() => undefined, { signal: controller.signal });
    await new Promise((resolve) => setImmediate(resolve));
    await store.close();
    await expect(pending).rejects.toBeInstanceOf(StoreClosedError);
  });

  it('a pending consumeArchive rejects with the abort reason of its signal', async () => {
    const store = createMemoryStore<Events>();
    const controller = new AbortController();
    const reason = new Error('stop waiting');
    const pending = store.consumeArchive(() => undefined, { signal: controller.signal });
    await new Promise((resolve) => setImmediate(resolve));
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    // The store is still usable.
    await store.appendEvents(['order', '4'], 0, [{ type: 'Added', data: { sku: 'a', qty: 1 } }]);
    await store.archive(['order', '4']);
    const seen: string[][] = [];
    await store.consumeArchive((record) => {
      seen.push([...record.aggregateId]);
    });
    expect(seen).toEqual([['order', '4']]);
    await store.close();
  });
});
