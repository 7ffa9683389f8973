/**
 * One cluster member as its own OS process, for the paged-query test: opens a `RaftMember` from
 * the JSON `QueryMemberSpec` in argv[2] and a store over it whose indexer gives every aggregate
 * a status and a label. The parent drives it with one JSON command per line on stdin; it answers
 * with one `@word {json}` line per report on stdout (stray output is ignored):
 *
 * - `{"do":"fill","count":N,"inFlight":K}`: appends one event to `["page", n]` for n < N, K at a
 *   time, then `@filled {ms}`.
 * - `{"do":"query","count":N,"rounds":R,"writers":W}`: W loops append to other aggregates (`["w", k]`,
 *   status `busy`, label `tier` = `silver`, so no query below lists them) while it pages through
 *   every `["page", n]` R times by prefix, by status and by label (`iterate…`, default page
 *   size); then stops the writers and answers `@queried {QueryReport}`.
 * - `{"do":"close"}`: closes store and member, `@closed`, exit 0.
 *
 * Every `statusEveryMs` it reports `@status {role, term, leader, applied}`.
 *
 *   node --import tsx test/scale/query-member.ts '<QueryMemberSpec JSON>'
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { createStore, type AggregateId } from '@timebox/core';
import { RaftMember } from '../../src/raft-member.js';
import {
  LABEL,
  PREFIX,
  STATUS,
  pageId,
  type QueryCommand,
  type QueryMemberSpec,
  type QueryReport,
  type QueryRun,
  type ScaleEvents,
} from './protocol.js';

function say(word: string, value: unknown = {}): void {
  process.stdout.write(`@${word} ${JSON.stringify(value)}\n`);
}

function die(error: unknown): never {
  process.stderr.write(`query member failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
}

process.on('unhandledRejection', die);

const spec = JSON.parse(process.argv[2] ?? '') as QueryMemberSpec;
const member = await RaftMember.open({ ...spec.member });
const store = createStore<ScaleEvents>(member.backend(), {
  indexer: (events) =>
    events.map((event) =>
      event.type === 'Opened' ? { status: STATUS, labels: { [LABEL]: 'gold' } } : { status: 'busy', labels: { [LABEL]: 'silver' } },
    ),
});

const report = setInterval(() => {
  const s = member.status();
  say('status', { role: s.role, term: s.term, leader: s.leader, applied: s.applied });
}, spec.statusEveryMs);

async function fill(count: number, inFlight: number): Promise<void> {
  const start = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let n = next++; n < count; n = next++) await store.appendEvents(pageId(n), 0, [{ type: 'Opened', data: { n } }]);
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  say('filled', { ms: Math.round(performance.now() - start) });
}

/** One full iteration of one query: how many items, and which of the filled numbers came twice, never, or were foreign. */
async function pass(query: QueryRun['query'], count: number): Promise<QueryRun> {
  const seen = new Uint8Array(count);
  let items = 0;
  let duplicates = 0;
  let foreign = 0;
  const ids: AsyncIterable<AggregateId> =
    query === 'prefix'
      ? store.iterateAggregates([PREFIX])
      : query === 'label'
        ? store.iterateAggregatesByLabel(LABEL, 'gold')
        : (async function* () {
            for await (const entry of store.iterateAggregatesByStatus(STATUS)) yield entry.id;
          })();
  const start = performance.now();
  for await (const id of ids) {
    items++;
    const n = id.length === 2 && id[0] === PREFIX ? Number(id[1]) : -1;
    if (!Number.isInteger(n) || n < 0 || n >= count) foreign++;
    else if (seen[n] === 1) duplicates++;
    else seen[n] = 1;
  }
  const missing = seen.reduce((sum, flag) => sum + (flag === 1 ? 0 : 1), 0);
  return { query, items, duplicates, foreign, missing, ms: Math.round(performance.now() - start) };
}

async function query(rounds: number, writers: number, count: number): Promise<void> {
  let stopping = false;
  let writes = 0;
  let writeErrors = 0;
  let nextWrite = 0;
  const loops = Array.from({ length: writers }, async () => {
    while (!stopping) {
      try {
        await store.appendEvents(['w', String(nextWrite++)], 0, [{ type: 'Touched', data: {} }]);
        writes++;
      } catch (error) {
        writeErrors++;
        process.stderr.write(`write failed: ${String(error)}\n`);
        // A timer, not a microtask: a write failing without I/O must not starve the event loop.
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  });
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const before = member.status();
  const runs: QueryRun[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      for (const q of ['prefix', 'status', 'label'] as const) runs.push(await pass(q, count));
    }
  } finally {
    stopping = true;
    await Promise.all(loops);
    delay.disable();
  }
  const after = member.status();
  const result: QueryReport = {
    runs,
    writes,
    writeErrors,
    maxLoopDelayMs: delay.max / 1e6,
    p99LoopDelayMs: delay.percentile(99) / 1e6,
    before: { role: before.role, term: before.term },
    after: { role: after.role, term: after.term },
  };
  say('queried', result);
}

let closing: Promise<void> | undefined;

async function close(): Promise<void> {
  clearInterval(report);
  await store.close();
  await member.close();
  say('closed');
  process.exit(0);
}

createInterface({ input: process.stdin })
  .on('line', (line) => {
    const command = JSON.parse(line) as QueryCommand;
    if (command.do === 'fill') void fill(command.count, command.inFlight).catch(die);
    else if (command.do === 'query') void query(command.rounds, command.writers, command.count).catch(die);
    else closing ??= close().catch(die);
  })
  // The parent is gone (its end of stdin closed): do not linger as an orphan.
  .on('close', () => {
    if (closing === undefined) process.exit(2);
  });

await store.ready();
say('ready');
