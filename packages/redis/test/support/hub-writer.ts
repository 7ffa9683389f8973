// A separate OS process for hub.test.ts (run with tsx, outside vitest):
// `tsx hub-writer.ts <url> <prefix> <aggregates> <rounds>`. Appends the pattern that
// `expectHubPattern` of the conformance suite checks — each round, every aggregate a batch of 1–3
// events, all aggregates concurrently — then prints its pid and each aggregate's event count.
import { createRedisStore } from '../../src/index.js';

const [url, prefix, aggregateCount, roundCount] = process.argv.slice(2) as [string, string, string, string];
const store = createRedisStore({}, { url, prefix });
await store.ready();
const counts = new Array<number>(Number(aggregateCount)).fill(0);
for (let round = 0; round < Number(roundCount); round++) {
  await Promise.all(
    counts.map(async (from, a) => {
      const size = ((round + a) % 3) + 1;
      counts[a] = from + size;
      const events = Array.from({ length: size }, (_, i) => ({ type: 'Written', data: { n: from + i, pid: process.pid } }));
      await store.appendEvents(['writer', String(a)], from, events);
    }),
  );
}
await store.close();
process.stdout.write(JSON.stringify({ pid: process.pid, counts }) + '\n');
