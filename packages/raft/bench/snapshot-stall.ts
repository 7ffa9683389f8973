/**
 * How long one snapshot export (and, with `--restore`, one restore of its image) holds the event
 * loop of a member whose state holds many aggregates (SPEC section 16: no event-loop stalls on
 * raft). A state that held its loop for hundreds of milliseconds lost leadership while it
 * exported, which is why the bench's `--large` raft rows ran with snapshots off.
 *
 * Not a test: run it by hand from packages/raft.
 *
 *   npx tsx bench/snapshot-stall.ts                         # 300000 aggregates
 *   npx tsx bench/snapshot-stall.ts --aggregates 1000000 --restore
 *   npx tsx bench/snapshot-stall.ts --dir /tmp/state300k    # fill once, reuse on later runs
 *
 * Each aggregate gets one append of two events with a status and a label (as the paging
 * workload's). Prints the image size, the wall time of the export, and the longest event-loop
 * delay during it (monitorEventLoopDelay, 1 ms resolution), which is the longest synchronous
 * stretch of the export.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { encodeCommand } from '../src/state/commands.js';
import { MaterializedState } from '../src/state/materialized-state.js';
import type { CommittedEntry } from '../src/node/ports.js';

interface Args {
  aggregates: number;
  dir: string | undefined;
  restore: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { aggregates: 300_000, dir: undefined, restore: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    if (flag === '--restore') {
      args.restore = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--dir') args.dir = value;
    else if (flag === '--aggregates') {
      args.aggregates = Number(value);
      if (!Number.isSafeInteger(args.aggregates) || args.aggregates <= 0) throw new Error('--aggregates needs a positive integer');
    } else throw new Error(`unknown flag ${flag}`);
  }
  return args;
}

const BATCH = 1_000;
const T0 = Date.UTC(2024, 0, 1);

/** Appends one two-event aggregate per entry until the state holds `aggregates`. */
async function fill(state: MaterializedState, aggregates: number): Promise<void> {
  let index = state.appliedIndex();
  const started = performance.now();
  while (index < aggregates) {
    const batch: CommittedEntry[] = [];
    for (let i = 0; i < BATCH && index < aggregates; i++) {
      index++;
      const command = encodeCommand({
        type: 'append',
        id: ['account', `a${index}`],
        expectedSequence: 0,
        events: [0, 1].map((sequence) => ({
          type: sequence === 0 ? 'Opened' : 'Deposited',
          sequence,
          timestamp: T0 + index,
          data: JSON.stringify({ n: index, amount: sequence * 10 }),
        })),
        index: { status: index % 3 === 0 ? 'closed' : 'open', statusTime: T0 + index, labels: { region: `r${index % 16}` } },
      });
      batch.push({ index, kind: 'command', proposalId: `p${index}`, data: command });
    }
    await state.apply(batch);
  }
  console.log(`filled ${aggregates} aggregates in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

/** Runs `work` and reports its wall time and the longest event-loop delay while it ran. */
async function measure<T>(label: string, work: () => Promise<T>): Promise<T> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  // Timers keep firing during the work, so the histogram samples the whole stretch.
  const ticker = setInterval(() => undefined, 1);
  histogram.enable();
  // Its first sample only starts its clock: wait until it records, so a stall right at the start counts.
  while (histogram.count < 2) await new Promise((resolve) => setTimeout(resolve, 2));
  const started = performance.now();
  const result = await work();
  const elapsed = performance.now() - started;
  // The histogram records a stall when the loop next runs its timer: let it run once more.
  await new Promise((resolve) => setTimeout(resolve, 10));
  histogram.disable();
  clearInterval(ticker);
  console.log(
    `${label}: ${elapsed.toFixed(0)} ms wall, longest loop delay ${(histogram.max / 1e6).toFixed(1)} ms, p99 ${(histogram.percentile(99) / 1e6).toFixed(1)} ms`,
  );
  return result;
}

const args = parseArgs(process.argv.slice(2));
const dir = args.dir ?? (await mkdtemp(join(tmpdir(), 'timebox-raft-snapshot-stall-')));
const reused = args.dir !== undefined && existsSync(join(dir, 'data.mdb'));
const state = MaterializedState.open(dir);
const scratch = await mkdtemp(join(tmpdir(), 'timebox-raft-snapshot-restore-'));
try {
  if (!reused || state.appliedIndex() < args.aggregates) await fill(state, args.aggregates);
  const applied = state.appliedIndex();
  // Once untimed, so the pages are in the OS cache for the timed runs as after a fill.
  await state.exportSnapshot();
  const image = await measure('export', () => state.exportSnapshot());
  console.log(`image: ${(image.length / 1e6).toFixed(1)} MB at applied index ${applied}`);
  if (args.restore) {
    const target = MaterializedState.open(scratch);
    try {
      await measure('restore', () => target.restoreSnapshot(image, applied));
    } finally {
      await target.close();
    }
  }
} finally {
  await state.close();
  await rm(scratch, { recursive: true, force: true });
  if (args.dir === undefined) await rm(dir, { recursive: true, force: true });
}
