import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runComparisons } from './harness.js';
import { describeMachine, renderTable, writeJson, type BackendReport } from './report.js';
import { SuiteUnavailableError, type BackendBench } from './suite.js';
import { memoryBench } from './workloads/memory.js';
import { postgresBench } from './workloads/postgres.js';
import { redisBench } from './workloads/redis.js';

/** Every backend the suite knows, in the order they run. */
const BENCHES: readonly BackendBench[] = [memoryBench, redisBench, postgresBench];
const NAMES = BENCHES.map((bench) => bench.name);

const USAGE = `Usage: pnpm bench [-- --quick] [-- --reps N] [-- --backend NAME[,NAME…]]

Measures Timebox on each backend against the baseline a user would otherwise pick, in the
same run; prints a table per backend and writes bench/results/<backend>.json.

  --quick            smaller sizes and 3 repetitions (a smoke run, not a reference)
  --reps N           measured repetitions per workload (default 5, or 3 with --quick)
  --backend LIST     comma-separated backends to run (default: all of ${NAMES.join(', ')})
  --help             this text`;

interface Options {
  readonly quick: boolean;
  readonly reps: number;
  readonly benches: readonly BackendBench[];
}

function parseOptions(): Options {
  // pnpm forwards a literal `--` when called as `pnpm bench -- --quick`; ignore it.
  const args = process.argv.slice(2).filter((arg) => arg !== '--');
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: 'boolean', default: false },
      reps: { type: 'string' },
      backend: { type: 'string' },
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
  const wanted = values.backend === undefined ? NAMES : values.backend.split(',').map((name) => name.trim());
  const benches = wanted.map((name) => {
    const bench = BENCHES.find((candidate) => candidate.name === name);
    if (bench === undefined) throw new RangeError(`--backend: unknown backend ${JSON.stringify(name)}; known: ${NAMES.join(', ')}`);
    return bench;
  });
  return { quick, reps, benches };
}

async function runBench(bench: BackendBench, quick: boolean, reps: number): Promise<void> {
  const warmups = 1;
  const minSampleMs = quick ? 100 : 500;
  const warmupMs = quick ? 300 : 1000;
  const progress = (line: string) => process.stderr.write(`[bench ${bench.name}] ${line}\n`);
  let suite;
  try {
    suite = await bench.open({ quick, progress });
  } catch (error) {
    if (error instanceof SuiteUnavailableError) {
      progress(`skipped: ${error.message}`);
      return;
    }
    throw error;
  }
  try {
    progress(
      `${quick ? 'quick' : 'full'} run: ${suite.comparisons.length} workloads, ${warmups} warm-up (≥ ${warmupMs} ms) ` +
        `+ ${reps} reps (≥ ${minSampleMs} ms) each`,
    );
    const results = await runComparisons(suite.comparisons, { reps, warmups, warmupMs, minSampleMs, progress });
    const report: BackendReport = {
      backend: bench.name,
      date: new Date().toISOString(),
      mode: quick ? 'quick' : 'full',
      reps,
      warmups,
      warmupMs,
      minSampleMs,
      machine: describeMachine(),
      results,
    };
    process.stdout.write(`\n## ${bench.name}\n\n${renderTable(report)}\n`);
    const file = fileURLToPath(new URL(`../results/${bench.name}.json`, import.meta.url));
    await writeJson(file, report);
    progress(`wrote ${file}`);
  } finally {
    await suite.close();
  }
}

async function main(): Promise<void> {
  const { quick, reps, benches } = parseOptions();
  for (const bench of benches) await runBench(bench, quick, reps);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
