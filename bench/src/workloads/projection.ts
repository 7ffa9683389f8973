import { randomUUID } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { AggregateId, Event, Projection, Store } from '@timebox/core';
import { runPool, type Comparison, type Trial, type Unavailable, type Workload } from '../harness.js';
import { checkPattern, type CounterEvents, type TrialStore } from './counter.js';

/**
 * Events per batch of every projection here, per page of the `readAll` floor and per pull of
 * Emmett's consumer. Core's default is 100 (`ProjectOptions.batchSize`, up to 10,000); a
 * projection catching up over a long log is configured with bigger batches, so fewer checkpoint
 * writes and fewer reads.
 */
export const PROJECTION_BATCH = 1_000;

/** The log a catch-up reads: `events` events over `aggregates` aggregates. */
export interface CatchUpSizes {
  readonly events: number;
  readonly aggregates: number;
  /** Events per append while filling (untimed). */
  readonly eventsPerAppend: number;
}

export const CATCH_UP_FULL: CatchUpSizes = { events: 100_000, aggregates: 1_000, eventsPerAppend: 10 };
export const CATCH_UP_QUICK: CatchUpSizes = { events: 20_000, aggregates: 1_000, eventsPerAppend: 10 };

/** The live-lag pattern: up to `ops` one-event appends, `concurrency` in flight, for at most `maxMs`. */
export interface LagSizes {
  readonly ops: number;
  readonly aggregates: number;
  readonly concurrency: number;
  /** Appending stops once this long has passed (the events already appended are still awaited). */
  readonly maxMs: number;
}

/** How long a lag trial waits, after its last append, for the handler to see every event. */
const DELIVERY_TIMEOUT_MS = 30_000;

/** Appends in flight while filling a catch-up log. */
const FILL_CONCURRENCY = 16;

/** A store holding the catch-up log, filled on first use (untimed) and shared by every trial. */
export interface FilledLog {
  store(): Promise<Store<CounterEvents>>;
  close(): Promise<void>;
}

/**
 * Opens a store with `open` and fills it, the first time a trial asks, with `sizes.events`
 * events: each aggregate gets its share in appends of `eventsPerAppend`, 16 aggregates at a
 * time. Trials only read the log (each runs a projection of its own name), so one fill serves
 * them all.
 */
export function filledLog(open: () => Promise<TrialStore>, sizes: CatchUpSizes, progress: (line: string) => void): FilledLog {
  checkCatchUpSizes(sizes);
  let opened: Promise<TrialStore> | undefined;
  const fill = async (): Promise<TrialStore> => {
    const start = performance.now();
    const trial = await open();
    const perAggregate = sizes.events / sizes.aggregates;
    await runPool(sizes.aggregates, FILL_CONCURRENCY, async (n) => {
      const id: AggregateId = Object.freeze(['catch-up', String(n)]);
      for (let from = 0; from < perAggregate; from += sizes.eventsPerAppend) {
        const count = Math.min(sizes.eventsPerAppend, perAggregate - from);
        await trial.store.appendEvents(
          id,
          from,
          Array.from({ length: count }, () => ({ type: 'Incremented' as const, data: { by: 1 } })),
        );
      }
    });
    progress(
      `projection-catch-up: filled ${sizes.events.toLocaleString('en-US')} events over ${sizes.aggregates.toLocaleString('en-US')} aggregates in ${((performance.now() - start) / 1000).toFixed(1)} s (untimed)`,
    );
    return trial;
  };
  return {
    async store() {
      opened ??= fill();
      return (await opened).store;
    },
    async close() {
      if (opened === undefined) return;
      const trial = await opened.catch(() => undefined);
      await trial?.close();
    },
  };
}

function checkCatchUpSizes({ events, aggregates, eventsPerAppend }: CatchUpSizes): void {
  if (events % aggregates !== 0) throw new RangeError(`catch-up events (${events}) must be a multiple of aggregates (${aggregates})`);
  if (!(eventsPerAppend >= 1)) throw new RangeError(`eventsPerAppend must be ≥ 1, got ${eventsPerAppend}`);
}

/**
 * The subject: `store.project(name, handler, { batchSize })` from the beginning of a filled log,
 * timed from the call until `caughtUp()` resolves; the handler only counts. A fresh projection
 * name per trial, so each starts without a checkpoint.
 *
 * `caughtUp()` looks at the stored checkpoint again every `min(pollMs, 50)` ms (nothing wakes it
 * when the runner stores one), so the timed part is rounded up to that step: a catch-up that takes
 * 20 ms reads as 50. The counters keep the runner's own pace, `handlerMs` from the call until the
 * handler saw the last event, over `handlerEvents` events (both summed over a repetition's trials).
 */
function projectWorkload(log: FilledLog, events: number): Workload {
  return {
    label: 'store.project',
    ops: events,
    async prepare(): Promise<Trial> {
      const store = await log.store();
      const name = `bench-catch-up-${randomUUID()}`;
      let handled = 0;
      let start = 0;
      let lastAt = 0;
      let projection: Projection | undefined;
      return {
        async run() {
          start = performance.now();
          projection = store.project(
            name,
            () => {
              if (++handled === events) lastAt = performance.now();
            },
            { batchSize: PROJECTION_BATCH },
          );
          await projection.caughtUp();
        },
        async verify() {
          if (handled !== events) throw new Error(`projection ${name}: handler saw ${handled} events, expected ${events}`);
          const status = await store.projectionStatus(name);
          if (status.lag !== 0) throw new Error(`projection ${name}: caught up, yet its status reports a lag of ${status.lag}`);
        },
        close: async () => projection?.stop(),
        counters: () => ({ handlerEvents: handled, handlerMs: lastAt - start }),
      };
    },
  };
}

/** The floor: paging through the same log with `store.readAll`, no runner, no checkpoint writes. */
function readAllWorkload(log: FilledLog, events: number): Workload {
  return {
    label: 'store.readAll pages',
    ops: events,
    async prepare(): Promise<Trial> {
      const store = await log.store();
      let read = 0;
      return {
        async run() {
          let page = await store.readAll({ limit: PROJECTION_BATCH });
          read += page.events.length;
          while (!page.end) {
            page = await store.readAll({ after: page.checkpoint, limit: PROJECTION_BATCH });
            read += page.events.length;
          }
        },
        async verify() {
          if (read !== events) throw new Error(`readAll paged over ${read} events, expected ${events}`);
        },
        close: async () => undefined,
      };
    },
  };
}

/**
 * Live lag: a projection caught up on a fresh, empty store (untimed), then one-event appends
 * over `aggregates` aggregates, `concurrency` in flight, until `ops` are done or `maxMs` has
 * passed; the run ends once the handler has seen every appended event. Each event's figure is
 * _handler called − append acknowledged_ (both `performance.now()` in this process); it can be
 * negative when the runner hands the event over before the append's caller resumes.
 */
export function lagWorkload(open: () => Promise<TrialStore>, sizes: LagSizes): Workload {
  const { ops, aggregates, concurrency, maxMs } = sizes;
  checkPattern({ ids: { length: aggregates } as unknown[], concurrency });
  const ids: AggregateId[] = Array.from({ length: aggregates }, (_, n) => Object.freeze(['lag', String(n)]));
  return {
    label: 'store.project handler',
    ops,
    async prepare(): Promise<Trial> {
      const trial = await open();
      const acked = new Float64Array(ops).fill(Number.NaN);
      const handled = new Float64Array(ops).fill(Number.NaN);
      const lastSequence = new Float64Array(aggregates).fill(-1);
      let appended = 0;
      let seen = 0;
      let redelivered = 0;
      let strangers = 0;
      let outOfOrder = 0;
      let allSeen: (() => void) | undefined;
      const handler = (event: Event): void => {
        const now = performance.now();
        const n = Number(event.aggregateId[1]);
        const i = event.sequence * aggregates + n;
        if (event.aggregateId[0] !== 'lag' || !Number.isInteger(i) || i < 0 || i >= ops) {
          strangers++;
          return;
        }
        if (!Number.isNaN(handled[i])) {
          redelivered++;
          return;
        }
        if (event.sequence < (lastSequence[n] as number)) outOfOrder++;
        lastSequence[n] = event.sequence;
        handled[i] = now;
        seen++;
        if (allSeen !== undefined && seen >= appended) allSeen();
      };
      const name = `bench-lag-${randomUUID()}`;
      const projection = trial.store.project(name, handler, { batchSize: PROJECTION_BATCH });
      try {
        await projection.caughtUp();
      } catch (error) {
        await projection.stop();
        await trial.close();
        throw error;
      }
      return {
        async run() {
          const deadline = performance.now() + maxMs;
          await runPool(ops, concurrency, async (i) => {
            // Each append starts in an event-loop turn of its own, as a request handler's append
            // does: on the memory backend an append never waits for I/O, so without this the 64
            // writers' promise chains would hold the loop until the last append, and the runner
            // (woken through setImmediate) would see nothing before the burst ended.
            await nextTurn();
            if (performance.now() > deadline) return;
            await trial.store.appendEvents(ids[i % aggregates] as AggregateId, Math.floor(i / aggregates), [
              { type: 'Incremented', data: { by: 1 } },
            ]);
            acked[i] = performance.now();
            appended++;
          });
          if (seen >= appended) return;
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => {
              allSeen = undefined;
              reject(new Error(`projection ${name}: handler saw ${seen} of ${appended} appended events within ${DELIVERY_TIMEOUT_MS} ms`));
            }, DELIVERY_TIMEOUT_MS);
            allSeen = () => {
              allSeen = undefined;
              clearTimeout(timer);
              resolve();
            };
          });
        },
        async verify() {
          if (appended === 0) throw new Error(`projection ${name}: no append finished within ${maxMs} ms`);
          if (strangers > 0) throw new Error(`projection ${name}: handler saw ${strangers} events this trial never appended`);
          if (outOfOrder > 0) throw new Error(`projection ${name}: ${outOfOrder} events reached the handler before an earlier one`);
          for (let i = 0; i < ops; i++) {
            if (Number.isNaN(acked[i]) !== Number.isNaN(handled[i])) {
              throw new Error(
                `projection ${name}: event ${i} was ${Number.isNaN(acked[i]) ? 'handled, never appended' : 'appended, never handled'}`,
              );
            }
          }
        },
        async close() {
          await projection.stop();
          await trial.close();
        },
        latencies() {
          const lags: number[] = [];
          for (let i = 0; i < ops; i++) if (!Number.isNaN(acked[i])) lags.push((handled[i] as number) - (acked[i] as number));
          return lags;
        },
        counters: () => ({ appended, redelivered }),
        done: () => appended,
      };
    },
  };
}

/** Where a backend's catch-up log comes from, or why there is none. */
export type CatchUpSource = FilledLog | Unavailable;

function isUnavailable(value: object): value is Unavailable {
  return 'unavailable' in value;
}

/**
 * The two read-side comparisons of a backend: `projection-catch-up` (the subject against the
 * `readAll` floor and any `peers`) and `projection-lag`. `lagOpen` opens a fresh, empty store per
 * lag trial. Either Timebox side is unavailable, with the reason, when `readSide` says so.
 */
export function projectionComparisons(options: {
  readonly catchUp: CatchUpSizes;
  readonly lag: LagSizes;
  readonly log: FilledLog;
  readonly lagOpen: () => Promise<TrialStore>;
  /** Why this backend cannot run projections in this build (`readSideGap`), or undefined. */
  readonly readSide: string | undefined;
  readonly peers?: readonly (Workload | Unavailable)[];
  readonly params?: Readonly<Record<string, number | string>>;
}): Comparison[] {
  const { catchUp, lag, log, readSide } = options;
  const unavailable = (label: string): Unavailable | undefined => (readSide === undefined ? undefined : { label, unavailable: readSide });
  const source: CatchUpSource = readSide === undefined ? log : { label: 'store.project', unavailable: readSide };
  return [
    {
      key: 'projection-catch-up',
      title: `projection catch-up from the beginning over ${catchUp.events.toLocaleString('en-US')} events (${catchUp.aggregates.toLocaleString('en-US')} aggregates), batches of ${PROJECTION_BATCH.toLocaleString('en-US')}, events/s`,
      kind: 'throughput',
      params: { ...catchUp, batchSize: PROJECTION_BATCH, ...options.params },
      subject: isUnavailable(source) ? source : projectWorkload(source, catchUp.events),
      baselines: [unavailable('store.readAll pages') ?? readAllWorkload(log, catchUp.events), ...(options.peers ?? [])],
    },
    {
      key: 'projection-lag',
      title: `projection lag: append acknowledged → handler called, ${lag.concurrency} in flight over ${lag.aggregates.toLocaleString('en-US')} aggregates, ≤ ${lag.ops.toLocaleString('en-US')} appends or ${(lag.maxMs / 1000).toFixed(0)} s`,
      kind: 'latency',
      params: { ...lag, batchSize: PROJECTION_BATCH, ...options.params },
      subject: unavailable('store.project handler') ?? lagWorkload(options.lagOpen, lag),
      baselines: [],
    },
  ];
}
