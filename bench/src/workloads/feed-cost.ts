import type { AggregateId, Store } from '@timebox/core';
import type { Comparison } from '../harness.js';
import { appendWorkload, verifyLogs, type CounterEvents, type SpreadPattern, type TrialStore } from './counter.js';

/** How long verification waits for the consumer to receive every appended event. */
const DELIVERY_TIMEOUT_MS = 30_000;

/** A live consumer of a store's events: started on the trial's store, stopped when it closes. */
type StartConsumer = (store: Store<CounterEvents>, onEvent: () => void) => Promise<() => Promise<void>>;

/** A live subscriber (`store.subscribe`). */
const subscriber: StartConsumer = async (store, onEvent) => {
  const unsubscribe = await store.subscribe(onEvent);
  return async () => {
    await unsubscribe();
  };
};

/** A durable projection (`store.project`), started from the (empty) store's beginning. */
const projection: StartConsumer = async (store, onEvent) => {
  const running = store.project('bench-feed-cost', () => onEvent());
  await running.caughtUp();
  return () => running.stop();
};

/**
 * Opens a trial store with a live consumer on it, counting what it receives. The trial's check
 * also waits, untimed, until the consumer has received every appended event, so a run where the
 * consumer fell behind or lost events fails instead of looking fast.
 */
function withConsumer(open: () => Promise<TrialStore>, start: StartConsumer, what: string): () => Promise<TrialStore> {
  return async () => {
    const trial = await open();
    let received = 0;
    let waiter: (() => void) | undefined;
    const stop = await start(trial.store, () => {
      received++;
      waiter?.();
    });
    const delivered = (ops: number) =>
      received >= ops
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => {
              waiter = undefined;
              reject(new Error(`the ${what} received ${received} of ${ops} appended events within ${DELIVERY_TIMEOUT_MS} ms`));
            }, DELIVERY_TIMEOUT_MS);
            waiter = () => {
              if (received < ops) return;
              waiter = undefined;
              clearTimeout(timer);
              resolve();
            };
          });
    return {
      store: trial.store,
      async verify(ids: readonly AggregateId[], ops: number) {
        await (trial.verify ? trial.verify(ids, ops) : verifyLogs(trial.store.backend, ids, ops));
        await delivered(ops);
        if (received !== ops) throw new Error(`the ${what} received ${received} events, ${ops} were appended`);
      },
      async close() {
        await stop();
        await trial.close();
      },
    };
  };
}

/**
 * The feed's cost (SPEC section 16): the same appends with a live subscriber on the store and
 * without one. The ratio is the share of append throughput left to writers while someone
 * subscribes; the target is at least 0.9.
 */
export function feedCostComparison(
  open: () => Promise<TrialStore>,
  pattern: SpreadPattern,
  params: Readonly<Record<string, number>>,
): Comparison {
  return consumerCostComparison(open, pattern, params, {
    key: 'subscribed',
    title: "the feed's cost: store.appendEvents with a live subscriber vs none",
    label: 'appends, subscriber live',
    start: subscriber,
    what: 'subscriber',
  });
}

/**
 * A live projection's cost (SPEC section 16): the same appends with a durable projection running
 * on the store (caught up, woken by the feed, storing its checkpoint after each batch) and
 * without one. Target: at least 0.9.
 */
export function projectionCostComparison(
  open: () => Promise<TrialStore>,
  pattern: SpreadPattern,
  params: Readonly<Record<string, number>>,
): Comparison {
  return consumerCostComparison(open, pattern, params, {
    key: 'projected',
    title: "a projection's cost: store.appendEvents with a live projection vs none",
    label: 'appends, projection live',
    start: projection,
    what: 'projection',
  });
}

function consumerCostComparison(
  open: () => Promise<TrialStore>,
  pattern: SpreadPattern,
  params: Readonly<Record<string, number>>,
  consumer: { key: string; title: string; label: string; start: StartConsumer; what: string },
): Comparison {
  return {
    key: `append-${pattern.concurrency}-${consumer.key}`,
    title: `${consumer.title}, ${pattern.concurrency} in flight over ${pattern.ids.length.toLocaleString('en-US')} aggregates`,
    kind: 'throughput',
    params: { ops: pattern.ops, aggregates: pattern.ids.length, concurrency: pattern.concurrency, ...params },
    subject: appendWorkload(consumer.label, withConsumer(open, consumer.start, consumer.what), pattern, false),
    baselines: [appendWorkload('appends, no consumer', open, pattern, false)],
    // Issue 18 / SPEC section 16: a live subscriber or projection costs the writers at most 10%.
    targets: { 'appends, no consumer': { atLeast: 0.9 } },
  };
}
