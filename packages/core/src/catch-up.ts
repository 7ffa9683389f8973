import { LRUCache } from 'lru-cache';
import type { LogDescriptor } from './backend.js';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from './checkpoint.js';
import { EventsDroppedError, HubGapError, SubscriberError } from './errors.js';
import type { Event } from './event.js';
import type { EventHub, SubscribeOptions, Unsubscribe } from './hub.js';
import { encodeAggregateId } from './id.js';
import type { Store } from './store.js';
import type { SubscriptionError } from './subscription.js';

/** Aggregates whose last delivered sequence a resuming subscriber remembers, to skip what it already had. */
const REMEMBERED_AGGREGATES = 100_000;

/**
 * `store.subscribe` with `after`: first delivers the log from the checkpoint (read with `readAll`),
 * then the live feed, skipping live events the catch-up already delivered. When the feed reports
 * that it may have missed events (a gap, or the subscriber's buffer overflowing), the subscriber
 * catches up from the log again instead of reporting the loss. Each aggregate's events arrive in
 * sequence order; an event may arrive twice only if its aggregate fell out of the memory of the
 * last `REMEMBERED_AGGREGATES` aggregates delivered.
 */
export async function subscribeFrom(
  store: Store,
  log: LogDescriptor,
  hub: EventHub,
  handler: (event: Event) => void | Promise<void>,
  options: SubscribeOptions & { readonly after: Checkpoint },
): Promise<Unsubscribe> {
  let resumeFrom = decodeCheckpoint(log, options.after, 'after');
  const delivered = new LRUCache<string, number>({ max: REMEMBERED_AGGREGATES });
  const report = options.onError ?? ((error: SubscriptionError) => console.error('timebox:', error));
  let stopped = false;
  // Catch-ups and live deliveries run one after another on this chain, so the handler is never
  // called twice at once and each aggregate's events keep their order.
  let chain: Promise<void> = Promise.resolve();

  const deliver = async (event: Event): Promise<void> => {
    const key = encodeAggregateId(event.aggregateId);
    if (stopped || event.sequence <= (delivered.get(key) ?? -1)) return;
    delivered.set(key, event.sequence);
    try {
      await handler(event);
    } catch (cause) {
      report(new SubscriberError(event, { cause }));
    }
  };

  const catchUp = async (): Promise<void> => {
    let after = encodeCheckpoint(log, resumeFrom);
    for (;;) {
      if (stopped) return;
      const page = await store.readAll({ after, limit: 500, types: options.types, aggregatePrefix: options.aggregatePrefix });
      for (const event of page.events) await deliver(event);
      after = page.checkpoint;
      if (page.end) break;
    }
    resumeFrom = decodeCheckpoint(log, after);
  };

  const enqueue = (step: () => Promise<void>): Promise<void> => {
    const next = chain.then(step);
    chain = next.catch((error: unknown) => {
      // A catch-up that failed (the backend unreachable) is reported as the gap it leaves.
      report(
        new HubGapError(store.backend.name, `catching up from the log failed: ${error instanceof Error ? error.message : String(error)}`),
      );
    });
    return chain;
  };

  const unsubscribe = await hub.subscribe((event) => enqueue(() => deliver(event)), {
    ...options,
    onError: (error) => {
      if (error instanceof HubGapError || error instanceof EventsDroppedError) void enqueue(catchUp);
      else report(error);
    },
  });
  // The feed is live (everything appended from now on reaches it): read what came before.
  void enqueue(catchUp);
  return async () => {
    stopped = true;
    await unsubscribe();
    await chain;
  };
}
