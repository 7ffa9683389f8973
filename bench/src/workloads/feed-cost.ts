import type { AggregateId } from '@timebox/core';
import type { Comparison } from '../harness.js';
import { appendWorkload, verifyLogs, type SpreadPattern, type TrialStore } from './counter.js';

/** How long verification waits for the subscriber to receive every appended event. */
const DELIVERY_TIMEOUT_MS = 30_000;

/**
 * Opens a trial store with a live subscriber (`store.subscribe`, counting what it receives) on it.
 * The trial's check also waits, untimed, until the subscriber has received every appended event,
 * so a run where the feed fell behind or lost events fails instead of looking fast.
 */
function withSubscriber(open: () => Promise<TrialStore>): () => Promise<TrialStore> {
  return async () => {
    const trial = await open();
    let received = 0;
    let waiter: (() => void) | undefined;
    const unsubscribe = await trial.store.subscribe(() => {
      received++;
      waiter?.();
    });
    const delivered = (ops: number) =>
      received >= ops
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => {
              waiter = undefined;
              reject(new Error(`the subscriber received ${received} of ${ops} appended events within ${DELIVERY_TIMEOUT_MS} ms`));
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
        if (received !== ops) throw new Error(`the subscriber received ${received} events, ${ops} were appended`);
      },
      async close() {
        await unsubscribe();
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
  return {
    key: `append-${pattern.concurrency}-subscribed`,
    title: `the feed's cost: store.appendEvents with a live subscriber vs none, ${pattern.concurrency} in flight over ${pattern.ids.length.toLocaleString('en-US')} aggregates`,
    kind: 'throughput',
    params: { ops: pattern.ops, aggregates: pattern.ids.length, concurrency: pattern.concurrency, ...params },
    subject: appendWorkload('appends, subscriber live', withSubscriber(open), pattern, false),
    baselines: [appendWorkload('appends, no subscriber', open, pattern, false)],
    // Issue 18 / SPEC section 16: a live subscriber costs the writers at most 10%.
    targets: { 'appends, no subscriber': { atLeast: 0.9 } },
  };
}
