import { describe, expect, it } from 'vitest';
import type { Backend, Feed, FeedSink } from '../src/backend.js';
import { HubGapError, HubUnavailableError, SubscriberError } from '../src/errors.js';
import type { Event, StoredEventRecord } from '../src/event.js';
import { EventHub } from '../src/hub.js';
import { createStore } from '../src/store.js';
import type { SubscriptionError } from '../src/subscription.js';

/** A backend whose feed the test drives by hand; only `watch` does anything. */
function feedBackend(options: { failWatch?: number } = {}) {
  const sinks = new Set<FeedSink>();
  let opened = 0;
  let closed = 0;
  let failures = options.failWatch ?? 0;
  const unused = async (): Promise<never> => {
    throw new Error('not used by these tests');
  };
  const backend: Backend = {
    name: 'feed-only',
    capabilities: { archive: false },
    ready: async () => undefined,
    close: async () => undefined,
    append: unused,
    loadEvents: unused,
    loadSnapshot: unused,
    saveSnapshot: unused,
    listAggregates: unused,
    getAggregateStatus: unused,
    listAggregatesByStatus: unused,
    listAggregatesByLabel: unused,
    listLabelValues: unused,
    log: { id: 'feed-only', partitions: 1 },
    readLog: unused,
    logHead: unused,
    projections: { load: unused, claim: unused, save: unused, release: unused, reset: unused },
    watch: async (sink: FeedSink): Promise<Feed> => {
      if (failures > 0) {
        failures--;
        throw new Error('feed connection refused');
      }
      opened++;
      sinks.add(sink);
      return {
        close: async () => {
          closed++;
          sinks.delete(sink);
        },
      };
    },
  };
  return {
    backend,
    push: (id: string[], records: StoredEventRecord[]) => sinks.forEach((sink) => sink.events(id, records)),
    gap: (reason: string) => sinks.forEach((sink) => sink.gap(reason)),
    counts: () => ({ opened, closed, live: sinks.size }),
  };
}

const record = (sequence: number, type = 'Counted'): StoredEventRecord => ({
  type,
  sequence,
  timestamp: 1_700_000_000_000 + sequence,
  data: `{"n":${sequence}}`,
  position: sequence + 1,
});
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('event hub (core)', () => {
  it('opens one feed for many subscribers, closes it with the last, and reopens on demand', async () => {
    const feed = feedBackend();
    const store = createStore(feed.backend);
    const first = await store.subscribe(() => undefined);
    const second = await store.subscribe(() => undefined);
    expect(feed.counts()).toEqual({ opened: 1, closed: 0, live: 1 });
    await first();
    expect(feed.counts().closed).toBe(0);
    await second();
    expect(feed.counts()).toEqual({ opened: 1, closed: 1, live: 0 });
    await store.subscribe(() => undefined);
    expect(feed.counts()).toEqual({ opened: 2, closed: 1, live: 1 });
    await store.close();
    expect(feed.counts()).toEqual({ opened: 2, closed: 2, live: 0 });
  });

  it('reports a feed gap in stream order, between the events around it', async () => {
    const feed = feedBackend();
    const store = createStore(feed.backend);
    const log: string[] = [];
    await store.subscribe((event) => void log.push(`event ${event.sequence}`), {
      onError: (error) => log.push(`${error.code}: ${(error as HubGapError).reason}`),
    });
    feed.push(['a'], [record(0)]);
    feed.gap('connection lost for 2 s');
    feed.push(['a'], [record(1)]);
    await settle();
    expect(log).toEqual(['event 0', 'HUB_GAP: connection lost for 2 s', 'event 1']);
  });

  it('decodes a payload once for all subscribers', async () => {
    const feed = feedBackend();
    const store = createStore(feed.backend);
    const seen: Event[] = [];
    await store.subscribe((event) => void seen.push(event));
    await store.subscribe((event) => void seen.push(event));
    feed.push(['a'], [record(0)]);
    await settle();
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBe(seen[1]);
    expect(seen[0]!.payload).toBe(seen[1]!.payload);
  });

  it('keeps up with writers that never let the event loop turn, dropping nothing', async () => {
    // Appends on the memory backend never wait for I/O: 8 writers appending in a loop run on
    // microtasks alone, so a drain waiting for setImmediate would only start once they finished.
    const feed = feedBackend();
    const store = createStore(feed.backend);
    const errors: SubscriptionError[] = [];
    let received = 0;
    let sequential = true;
    const last = new Map<string, number>();
    await store.subscribe(
      (event) => {
        received++;
        const key = event.aggregateId.join('/');
        if ((last.get(key) ?? -1) !== event.sequence - 1) sequential = false;
        last.set(key, event.sequence);
      },
      { bufferSize: 100, onError: (error) => errors.push(error) },
    );
    const writer = async (w: number) => {
      for (let i = 0; i < 500; i++) {
        await Promise.resolve();
        feed.push(['w', String(w)], [record(i)]);
      }
    };
    let turned = false;
    setImmediate(() => (turned = true));
    await Promise.all(Array.from({ length: 8 }, (_, w) => writer(w)));
    // The writers finished before the event loop turned once; the subscriber kept up meanwhile.
    expect(turned).toBe(false);
    expect(received).toBeGreaterThan(8 * 500 - 100);
    await settle();
    expect(errors).toEqual([]);
    expect(received).toBe(8 * 500);
    expect(sequential).toBe(true);
  });

  it('wakes a watcher on events passing its filter and on gaps, without subscribing it, and closes the feed after the last', async () => {
    const feed = feedBackend();
    const hub = new EventHub(feed.backend);
    let all = 0;
    let filtered = 0;
    const stopAll = await hub.watch({ types: undefined, aggregatePrefix: undefined }, () => all++);
    const stopFiltered = await hub.watch({ types: new Set(['Wanted']), aggregatePrefix: ['order'] }, () => filtered++);
    expect(feed.counts()).toEqual({ opened: 1, closed: 0, live: 1 });
    feed.push(['order', '1'], [record(0, 'Other'), record(1, 'Wanted')]);
    feed.push(['order', '2'], [record(0, 'Other')]);
    feed.push(['invoice', '1'], [record(0, 'Wanted')]);
    feed.push(['orders', '1'], [record(0, 'Wanted')]);
    // Once per feed call that passes: the first only (the prefix is part-wise: 'orders' is not 'order').
    expect([all, filtered]).toEqual([4, 1]);
    feed.gap('connection lost');
    expect([all, filtered]).toEqual([5, 2]);
    // A subscriber beside them still gets the events; the feed stays open until the last leaves.
    const seen: number[] = [];
    const unsubscribe = await hub.subscribe((event) => void seen.push(event.sequence), {});
    await stopAll();
    await stopFiltered();
    expect(feed.counts().closed).toBe(0);
    feed.push(['order', '3'], [record(7)]);
    await settle();
    expect(seen).toEqual([7]);
    expect([all, filtered]).toEqual([5, 2]);
    await unsubscribe();
    expect(feed.counts()).toEqual({ opened: 1, closed: 1, live: 0 });
    await hub.close();
  });

  it('keeps delivering when onError itself throws', async () => {
    const feed = feedBackend();
    const store = createStore(feed.backend);
    const seen: number[] = [];
    const originalError = console.error;
    const logged: unknown[] = [];
    console.error = (...args: unknown[]) => void logged.push(args);
    try {
      await store.subscribe(
        (event) => {
          seen.push(event.sequence);
          throw new Error('handler bug');
        },
        {
          onError: () => {
            throw new Error('onError bug');
          },
        },
      );
      feed.push(['a'], [record(0), record(1)]);
      await settle();
    } finally {
      console.error = originalError;
    }
    expect(seen).toEqual([0, 1]);
    expect(logged).toHaveLength(2);
  });

  it('without onError, handler failures go to console.error rather than vanishing', async () => {
    const feed = feedBackend();
    const store = createStore(feed.backend);
    const originalError = console.error;
    const logged: unknown[][] = [];
    console.error = (...args: unknown[]) => void logged.push(args);
    try {
      await store.subscribe(() => {
        throw new Error('handler bug');
      });
      feed.push(['a'], [record(0)]);
      await settle();
    } finally {
      console.error = originalError;
    }
    expect(logged).toHaveLength(1);
    expect(logged[0]![1]).toBeInstanceOf(SubscriberError);
  });

  it('unsubscribe resolves only after the handler call in progress returned', async () => {
    const feed = feedBackend();
    const store = createStore(feed.backend);
    let release!: () => void;
    let finished = false;
    const stop = await store.subscribe(async () => {
      await new Promise<void>((resolve) => (release = resolve));
      finished = true;
    });
    feed.push(['a'], [record(0), record(1)]);
    await settle();
    let stopped = false;
    const stopping = stop().then(() => (stopped = true));
    await settle();
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(finished).toBe(true);
  });

  it('closing the store does not wait for a handler that never returns, and delivers nothing more', async () => {
    const feed = feedBackend();
    const store = createStore(feed.backend);
    const seen: number[] = [];
    await store.subscribe((event) => {
      seen.push(event.sequence);
      return new Promise<void>(() => undefined);
    });
    feed.push(['a'], [record(0), record(1)]);
    await settle();
    await store.close();
    expect(feed.counts()).toEqual({ opened: 1, closed: 1, live: 0 });
    expect(seen).toEqual([0]);
  });

  it('a feed that fails to open rejects subscribe, subscribes nothing, and is tried again next time', async () => {
    const feed = feedBackend({ failWatch: 1 });
    const store = createStore(feed.backend);
    const errors: SubscriptionError[] = [];
    await expect(store.subscribe(() => undefined)).rejects.toThrow('feed connection refused');
    expect(feed.counts().opened).toBe(0);
    const seen: number[] = [];
    await store.subscribe((event) => void seen.push(event.sequence), { onError: (error) => errors.push(error) });
    feed.push(['a'], [record(0)]);
    await settle();
    expect(seen).toEqual([0]);
    expect(errors).toEqual([]);
  });

  it('a backend without a feed rejects subscribe with HubUnavailableError', async () => {
    const withoutFeed: Backend = { ...feedBackend().backend };
    delete withoutFeed.watch;
    const store = createStore(withoutFeed);
    await expect(store.subscribe(() => undefined)).rejects.toBeInstanceOf(HubUnavailableError);
    await expect(store.subscribe(() => undefined)).rejects.toThrow('feed-only backend cannot deliver appended events');
  });
});
