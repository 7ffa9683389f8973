/**
 * The materialized state alone (no consensus, no network): how fast `MaterializedState.apply`
 * takes committed append commands, in batches as the apply queue hands them over. Separates the
 * state machine's cost from the rest of the write path when profiling (backend issue 6).
 *
 * Not a test: run it by hand from packages/raft.
 *
 *   npx tsx bench/apply-throughput.ts                  # 64-entry batches over 1000 aggregates
 *   npx tsx bench/apply-throughput.ts --batch 8 --rounds 3
 *
 * Options: --entries N (default 50000), --batch N (64), --aggregates N (1000), --rounds N (3).
 * Prints entries/s, the main thread's busy time per entry (event-loop utilization), and the
 * process CPU per entry (main thread plus LMDB's write thread).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { encodeCommand } from '../src/state/commands.js';
import { MaterializedState } from '../src/state/materialized-state.js';
import type { CommittedEntry } from '../src/node/ports.js';

interface Args {
  entries: number;
  batch: number;
  aggregates: number;
  rounds: number;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { entries: 50_000, batch: 64, aggregates: 1_000, rounds: 3 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    const value = Number(argv[++i]);
    if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${flag} needs a positive integer`);
    switch (flag) {
      case '--entries':
        args.entries = value;
        break;
      case '--batch':
        args.batch = value;
        break;
      case '--aggregates':
        args.aggregates = value;
        break;
      case '--rounds':
        args.rounds = value;
        break;
      default:
        throw new Error(`unknown flag ${flag}`);
    }
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const dir = await mkdtemp(join(tmpdir(), 'timebox-raft-apply-bench-'));
const state = MaterializedState.open(dir);
const next = new Array<number>(args.aggregates).fill(0);
let index = 0;
let proposal = 0;
const proposalPrefix = `${'0'.repeat(36)}:`;

/** The committed entries of `count` appends of one event each, aggregates in turn, as the backend encodes them. */
function makeEntries(count: number): CommittedEntry[] {
  const out: CommittedEntry[] = [];
  for (let i = 0; i < count; i++) {
    const a = index % args.aggregates;
    const sequence = next[a] as number;
    next[a] = sequence + 1;
    const data = encodeCommand({
      type: 'append',
      id: ['bench', String(a)],
      expectedSequence: sequence,
      events: [{ type: 'Incremented', sequence, timestamp: Date.now(), data: '{"by":1}' }],
      index: undefined,
    });
    index++;
    out.push({ index, kind: 'command', proposalId: proposalPrefix + (proposal++).toString(16).padStart(13, '0'), data });
  }
  return out;
}

try {
  for (let round = 0; round < args.rounds; round++) {
    const batches: CommittedEntry[][] = [];
    for (let done = 0; done < args.entries; done += args.batch) batches.push(makeEntries(Math.min(args.batch, args.entries - done)));
    const elu = performance.eventLoopUtilization();
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (const batch of batches) {
      const results = await state.apply(batch);
      for (const result of results.values()) if (result.type !== 'appended') throw new Error(`unexpected result ${result.type}`);
    }
    const ms = performance.now() - started;
    const busy = performance.eventLoopUtilization(elu);
    const used = process.cpuUsage(cpu);
    const perEntry = (value: number) => ((value * 1000) / args.entries).toFixed(1);
    console.log(
      `round ${round + 1}: ${Math.round((args.entries / ms) * 1000).toLocaleString('en-US')} entries/s in batches of ${args.batch}, ` +
        `main thread ${perEntry(busy.active)} µs/entry, process CPU ${perEntry((used.user + used.system) / 1000)} µs/entry`,
    );
  }
} finally {
  await state.close();
  await rm(dir, { recursive: true, force: true });
}
