import { CommandHandler, getInMemoryEventStore, type InMemoryEventStore } from '@event-driven-io/emmett';
import { runPool, runTimedPool, type Trial, type Workload } from '../harness.js';
import { opsOn } from './counter.js';

type Incremented = { type: 'Incremented'; data: { by: number } };

/** Emmett's counterpart of `increment`: decide one `Incremented` event. */
const decide = (): Incremented => ({ type: 'Incremented', data: { by: 1 } });

const handle = CommandHandler<{ count: number }, Incremented>({
  evolve: (state, event) => ({ count: state.count + event.data.by }),
  initialState: () => ({ count: 0 }),
});

/** Throws unless stream `n` of `streams` holds exactly its share of `ops`. */
async function verifyStreams(store: InMemoryEventStore, streams: readonly string[], ops: number): Promise<void> {
  const touched = Math.min(streams.length, ops);
  for (let n = 0; n < touched; n++) {
    const { events } = await store.readStream(streams[n] as string);
    const expected = opsOn(n, ops, touched);
    if (events.length !== expected) throw new Error(`emmett stream ${n}: expected ${expected} events, found ${events.length}`);
  }
}

/**
 * Emmett's in-memory event store driven by its `CommandHandler`, doing the same command as
 * `executor.exec(id, increment)`: read the stream, fold it, decide, append with the expected
 * version. Emmett keeps no projection cache, so every command replays its whole stream.
 */
export function emmettHandlerWorkload(ops: number, streamCount: number, concurrency: number): Workload {
  return {
    label: streamCount === 1 ? `Emmett CommandHandler (stream grows to ${ops.toLocaleString('en-US')})` : 'Emmett CommandHandler',
    ops,
    async prepare(): Promise<Trial> {
      const store = getInMemoryEventStore();
      const streams = Array.from({ length: streamCount }, (_, n) => `counter-${n}`);
      return {
        run: () => runPool(ops, concurrency, (i) => handle(store, streams[i % streamCount] as string, decide)),
        verify: () => verifyStreams(store, streams, ops),
        close: async () => undefined,
      };
    },
  };
}

/** Emmett's in-memory `appendToStream` of one event with the expected stream version. */
export function emmettAppendWorkload(ops: number, streamCount: number, concurrency: number, latency: boolean): Workload {
  return {
    label: 'Emmett appendToStream',
    ops,
    async prepare(): Promise<Trial> {
      const store = getInMemoryEventStore();
      const streams = Array.from({ length: streamCount }, (_, n) => `counter-${n}`);
      const latencies: number[] = [];
      const appendOne = (i: number) =>
        store.appendToStream(streams[i % streamCount] as string, [decide()], {
          expectedStreamVersion: BigInt(Math.floor(i / streamCount)),
        });
      return {
        run: () => (latency ? runTimedPool(ops, concurrency, appendOne, latencies) : runPool(ops, concurrency, appendOne)),
        verify: () => verifyStreams(store, streams, ops),
        close: async () => undefined,
        ...(latency ? { latencies: () => latencies } : {}),
      };
    },
  };
}
