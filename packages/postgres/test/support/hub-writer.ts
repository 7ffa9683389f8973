// A separate OS process for hub.test.ts: appends a known pattern of events to a PostgreSQL
// store, then exits. Run with tsx: `tsx hub-writer.ts <url> <prefix> <aggregates> <rounds>`.
import { createPostgresStore } from '../../src/index.js';

const [url, prefix, aggregateCount, roundCount] = process.argv.slice(2) as [string, string, string, string];
const store = createPostgresStore({}, { url, prefix, maxConns: 4 });
await store.ready();
const aggregates = Number(aggregateCount);
const next = new Array<number>(aggregates).fill(0);
for (let round = 0; round < Number(roundCount); round++) {
  // Every aggregate gets a batch of 1–3 events per round, all aggregates concurrently.
  await Promise.all(
    next.map(async (from, a) => {
      const size = ((round + a) % 3) + 1;
      next[a] = from + size;
      const events = Array.from({ length: size }, (_, i) => ({ type: 'Written', data: { aggregate: a, n: from + i, pid: process.pid } }));
      await store.appendEvents(['writer', String(a)], from, events);
    }),
  );
}
await store.close();
process.stdout.write(JSON.stringify({ pid: process.pid, counts: next }) + '\n');
