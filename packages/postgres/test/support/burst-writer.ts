// A separate OS process for feed-wakeup.test.ts, started with fork (tsx): `burst-writer.ts <url>
// <prefix> <aggregates> <inFlight>`. On each message { burst: n } it appends one event to every
// aggregate, `inFlight` appends at a time, and answers { burst: n, done: true } once all are
// acknowledged. Its appends announce themselves the way every process does (FeedNotifier).
import { createPostgresStore } from '../../src/index.js';

const [url, prefix, aggregateCount, inFlightCount] = process.argv.slice(2) as [string, string, string, string];
const aggregates = Number(aggregateCount);
const inFlight = Number(inFlightCount);
const store = createPostgresStore({}, { url, prefix, maxConns: 8 });
await store.ready();

process.on('message', (message: { burst?: number; stop?: true }) => {
  if (message.stop) {
    void store.close().then(() => process.disconnect());
    return;
  }
  const burst = message.burst as number;
  let next = 0;
  void Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < aggregates) {
        const a = next++;
        await store.appendEvents(['burst', String(a)], burst, [{ type: 'Burst', data: { burst } }]);
      }
    }),
  ).then(
    () => process.send?.({ burst, done: true }),
    (error: unknown) => process.send?.({ burst, error: String(error) }),
  );
});
process.send?.({ ready: true });
