import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runComparisons } from './harness.js';
import { describeMachine, renderTable, writeJson, type BackendReport } from './report.js';
import { FULL_SIZES, QUICK_SIZES, memoryComparisons } from './workloads/memory.js';

const USAGE = `Usage: pnpm bench [-- --quick] [-- --reps N]

Measures exec throughput of Timebox on the memory backend against raw backend appends in the
same run, prints a table and writes bench/results/memory.json.

  --quick    fewer operations and 3 repetitions (a smoke run, not a reference)
  --reps N   measured repetitions per workload (default 5, or 3 with --quick)
  --help     this text`;

function parseOptions(): { quick: boolean; reps: number } {
  // pnpm forwards a literal `--` when called as `pnpm bench -- --quick`; ignore it.
  const args = process.argv.slice(2).filter((arg) => arg !== '--');
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: 'boolean', default: false },
      reps: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const quick = values.quick === true;
  const reps = values.reps === undefined ? (quick ? 3 : 5) : Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1) throw new RangeError(`--reps must be a whole number ≥ 1, got ${values.reps}`);
  return { quick, reps };
}

async function main(): Promise<void> {
  const { quick, reps } = parseOptions();
  const warmups = 1;
  const minSampleMs = quick ? 100 : 500;
  const warmupMs = quick ? 300 : 1000;
  const progress = (line: string) => process.stderr.write(`[bench memory] ${line}\n`);
  const comparisons = memoryComparisons(quick ? QUICK_SIZES : FULL_SIZES);
  progress(
    `${quick ? 'quick' : 'full'} run: ${comparisons.length} workloads, ${warmups} warm-up (≥ ${warmupMs} ms) ` +
      `+ ${reps} reps (≥ ${minSampleMs} ms) each`,
  );
  const results = await runComparisons(comparisons, { reps, warmups, warmupMs, minSampleMs, progress });
  const report: BackendReport = {
    backend: 'memory',
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    reps,
    warmups,
    warmupMs,
    minSampleMs,
    machine: describeMachine(),
    results,
  };
  process.stdout.write(`\n${renderTable(report)}\n`);
  const file = fileURLToPath(new URL('../results/memory.json', import.meta.url));
  await writeJson(file, report);
  progress(`wrote ${file}`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
