import { randomUUID } from 'node:crypto';
import { DefaultPostgreSQLEventStoreProcessorPullingFrequencyInMs, type PostgresEventStore } from '@event-driven-io/emmett-postgresql';
import type { Sql } from 'postgres';
import { runPool, type Trial, type Workload } from '../harness.js';
import { PROJECTION_BATCH, type CatchUpSizes } from './projection.js';

/** How long one catch-up may take before the trial gives up and fails. */
const CATCH_UP_TIMEOUT_MS = 300_000;

/** What a consumer from the beginning of Emmett's log must read. */
export interface EmmettLogState {
  /** Messages in the log: the fill plus the one setup event that created the schema. */
  readonly messages: number;
  /** The global position of the last one. */
  readonly last: bigint;
}

/** Emmett's store holding the catch-up log, filled on first use (untimed) and shared by its trials. */
export interface EmmettLog {
  /** Fills the log the first time. */
  ready(): Promise<EmmettLogState>;
}

/**
 * Fills Emmett's PostgreSQL event store the first time a trial asks, with the same events as the
 * Timebox side: `events` over `aggregates` streams, appends of `eventsPerAppend` with the expected
 * stream version, round-robin over the streams, **one append at a time**. Emmett 0.42's consumer
 * orders a pull by (transaction ID, global position) but resumes after the last message's global
 * position, and its reactor skips any message at or below its checkpoint: on a log written by
 * concurrent appenders, where the two orders differ, it silently skips messages (measured here:
 * 17,327 of 20,001 handled after a fill with 16 appends in flight; the upstream fix, emmett PR #336
 * "Fixed race conditions in PostgreSQL event store consumer message polling", is not in 0.42.0). Written one append at a time, both orders agree and it reads every message. The
 * database is the suite's own, dropped at the end, so the rows stay until then.
 */
export function emmettLog(emmett: PostgresEventStore, admin: Sql, sizes: CatchUpSizes, progress: (line: string) => void): EmmettLog {
  let filled: Promise<EmmettLogState> | undefined;
  const fill = async (): Promise<EmmettLogState> => {
    const start = performance.now();
    const run = randomUUID();
    const perStream = sizes.events / sizes.aggregates;
    for (let from = 0; from < perStream; from += sizes.eventsPerAppend) {
      const count = Math.min(sizes.eventsPerAppend, perStream - from);
      await runPool(sizes.aggregates, 1, (n) =>
        emmett.appendToStream(
          `catchup-${run}-${n}`,
          Array.from({ length: count }, () => ({ type: 'Incremented', data: { by: 1 } })),
          { expectedStreamVersion: BigInt(from) },
        ),
      );
    }
    // Every message of the default partition, as the consumer reads them (the other Emmett
    // workloads delete their rows when they close).
    const [row] = await admin<{ n: number; last: string | null }[]>`
      SELECT count(*)::int AS n, max(global_position)::text AS last FROM emt_messages WHERE is_archived = FALSE`;
    const state = { messages: row?.n ?? 0, last: BigInt(row?.last ?? 0) };
    progress(
      `projection-catch-up: filled Emmett's store with ${sizes.events.toLocaleString('en-US')} events over ${sizes.aggregates.toLocaleString('en-US')} streams, one append at a time, in ${((performance.now() - start) / 1000).toFixed(1)} s (untimed); its log holds ${state.messages.toLocaleString('en-US')} messages`,
    );
    return state;
  };
  return {
    ready() {
      filled ??= fill();
      return filled;
    },
  };
}

/**
 * The peer: Emmett's PostgreSQL consumer with one reactor whose `eachMessage` only counts, from
 * the beginning of the log, set up as Emmett's docs show (`eventStore.consumer()`,
 * `consumer.reactor({ processorId, eachMessage })`, `consumer.start()`), pulling batches of
 * `PROJECTION_BATCH` like the Timebox side. The reactor's `stopAfter` stops it once it has handled
 * the log's last message (read before timing): then its checkpoint is committed and `start()`
 * resolves, the counterpart of `caughtUp()` (everything appended before the call handled and
 * checkpointed). Timed from creating the consumer until then. A fresh processor ID per trial, so
 * each starts without a checkpoint.
 *
 * `pullingFrequencyInMs` is the consumer's wait after each pull that found messages (the first
 * wait is 100 ms whatever it is set to): Emmett's default (50 ms), or a shorter one to show how
 * much of its time is that wait.
 */
export function emmettCatchUpWorkload(
  emmett: PostgresEventStore,
  admin: Sql,
  log: EmmettLog,
  events: number,
  pullingFrequencyInMs: number = DefaultPostgreSQLEventStoreProcessorPullingFrequencyInMs,
): Workload {
  const defaults = pullingFrequencyInMs === DefaultPostgreSQLEventStoreProcessorPullingFrequencyInMs;
  return {
    label: `Emmett consumer, pull every ${pullingFrequencyInMs} ms${defaults ? ' (default)' : ''}`,
    ops: events,
    async prepare(): Promise<Trial> {
      const { messages, last } = await log.ready();
      const processorId = `bench-catch-up-${randomUUID()}`;
      let handled = 0;
      let timedOut = false;
      return {
        async run() {
          const consumer = emmett.consumer({ pulling: { batchSize: PROJECTION_BATCH, pullingFrequencyInMs } });
          consumer.reactor({
            processorId,
            eachMessage: () => {
              handled++;
            },
            stopAfter: (message) => message.metadata.globalPosition >= last,
          });
          const timer = setTimeout(() => {
            timedOut = true;
            void consumer.stop();
          }, CATCH_UP_TIMEOUT_MS);
          try {
            await consumer.start();
          } finally {
            clearTimeout(timer);
          }
        },
        async verify() {
          if (timedOut)
            throw new Error(
              `Emmett reactor ${processorId}: not caught up within ${CATCH_UP_TIMEOUT_MS} ms (${handled} of ${messages} messages)`,
            );
          if (handled !== messages) throw new Error(`Emmett reactor ${processorId}: saw ${handled} messages, expected ${messages}`);
          const [stored] = await admin<{ checkpoint: string | null }[]>`
            SELECT last_processed_checkpoint AS checkpoint FROM emt_processors WHERE processor_id = ${processorId}`;
          if (stored?.checkpoint == null || BigInt(stored.checkpoint) !== last) {
            throw new Error(
              `Emmett reactor ${processorId}: stored checkpoint ${stored?.checkpoint} is not the log's last position ${last}`,
            );
          }
        },
        async close() {
          await admin`DELETE FROM emt_processors WHERE processor_id = ${processorId}`;
        },
      };
    },
  };
}
