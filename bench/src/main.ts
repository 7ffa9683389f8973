import * as os from 'node:os';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { countSteps, runComparisons } from './harness.js';
import { Progress } from './progress.js';
import { describeMachine, LEGEND, renderHeading, renderTable, writeJson, type BackendReport, type RunReport } from './report.js';
import { messageOf, SuiteUnavailableError, type BackendBench } from './suite.js';
import { renderSvg } from './svg.js';
import { renderHubTable, runHubLatency } from './hub/report.js';
import type { HubBackend } from './hub/stores.js';
import { pagingBench } from './paging/backends.js';
import { memoryBench } from './workloads/memory.js';
import { postgresBench } from './workloads/postgres.js';
import { raftBench } from './workloads/raft.js';
import { redisBench } from './workloads/redis.js';
import { redisClusterBench } from './workloads/redis-cluster.js';

/** Every backend the suite knows, in the order they run. */
const BENCHES: readonly BackendBench[] = [memoryBench, redisBench, redisClusterBench, postgresBench, raftBench];
const NAMES = BENCHES.map((bench) => bench.name);

const USAGE = `Usage: pnpm bench [-- --quick] [-- --reps N] [-- --backend NAME[,NAME…]] [-- --only KEY[,KEY…]] [-- --large [--sizes N,N]]

Measures Timebox on each backend against the baselines a user would otherwise pick, in the
same run; prints a table per backend and writes bench/results/bench.json and bench.svg.

  --quick            smaller sizes and 3 repetitions (a smoke run, not a reference)
  --reps N           measured repetitions per workload (default 5, or 3 with --quick)
  --backend LIST     comma-separated backends to run (default: all of ${NAMES.join(', ')})
  --only KEYS        comma-separated workload keys to run (e.g. append-latency-1,append-64-subscribed);
                     "hub" selects the event hub latency, which otherwise runs only without --only
  --large            only the paging rows over large stores (minutes per backend: each store is
                     filled first); writes bench/results/bench-large.json and bench-large.svg
  --sizes LIST       with --large: store sizes in aggregates (default 100000,1000000); the largest
                     is each row's subject, the others its baselines
  --help             this text`;

interface Options {
  readonly quick: boolean;
  readonly reps: number;
  readonly benches: readonly BackendBench[];
  /** Workload keys to run (and "hub"), or undefined for all. */
  readonly only: ReadonlySet<string> | undefined;
  /** The paging rows over large stores only (`--large`). */
  readonly large: boolean;
}

const DEFAULT_LARGE_SIZES = [100_000, 1_000_000];

function parseOptions(): Options {
  // pnpm forwards a literal `--` when called as `pnpm bench -- --quick`; ignore it.
  const args = process.argv.slice(2).filter((arg) => arg !== '--');
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: 'boolean', default: false },
      reps: { type: 'string' },
      backend: { type: 'string' },
      only: { type: 'string' },
      large: { type: 'boolean', default: false },
      sizes: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const quick = values.quick === true;
  const large = values.large === true;
  if (values.sizes !== undefined && !large) throw new RangeError('--sizes applies to --large only');
  const sizes = values.sizes === undefined ? DEFAULT_LARGE_SIZES : values.sizes.split(',').map((size) => Number(size.trim()));
  if (sizes.some((size) => !Number.isInteger(size) || size < 1_000) || new Set(sizes).size !== sizes.length)
    throw new RangeError(`--sizes must be distinct whole numbers ≥ 1000, got ${values.sizes}`);
  const reps = values.reps === undefined ? (quick || large ? 3 : 5) : Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1) throw new RangeError(`--reps must be a whole number ≥ 1, got ${values.reps}`);
  const wanted = values.backend === undefined ? NAMES : values.backend.split(',').map((name) => name.trim());
  const benches = wanted.map((name) => {
    const bench = BENCHES.find((candidate) => candidate.name === name);
    if (bench === undefined) throw new RangeError(`--backend: unknown backend ${JSON.stringify(name)}; known: ${NAMES.join(', ')}`);
    return large ? pagingBench(bench.name, sizes) : bench;
  });
  const only = values.only === undefined ? undefined : new Set(values.only.split(',').map((key) => key.trim()));
  return { quick, reps, benches, only, large };
}

const load = () => os.loadavg().map((n) => Math.round(n * 100) / 100);

async function runBench(
  bench: BackendBench,
  settings: Pick<RunReport, 'mode' | 'reps' | 'memoryReps' | 'warmups' | 'warmupMs' | 'minSampleMs'>,
  progress: Progress,
  only: ReadonlySet<string> | undefined,
): Promise<BackendReport> {
  const start = performance.now();
  progress.startSuite(bench.name, 0);
  let suite;
  try {
    suite = await bench.open({ quick: settings.mode === 'quick', progress: (line) => progress.line(line) });
  } catch (error) {
    if (error instanceof SuiteUnavailableError) {
      progress.line(`skipped: ${error.message}`);
      return { backend: bench.name, skipped: error.message, notes: [], results: [], wallMs: performance.now() - start };
    }
    throw error;
  }
  try {
    const options = { ...settings, warmups: suite.warmups ?? settings.warmups };
    const comparisons = only === undefined ? suite.comparisons : suite.comparisons.filter((comparison) => only.has(comparison.key));
    const steps = countSteps(comparisons, options);
    progress.startSuite(bench.name, steps);
    progress.line(`${comparisons.length} comparisons, ${steps} steps, ${options.warmups} warm-up(s)`);
    const results = await runComparisons(comparisons, { ...options, onStep: (line) => progress.step(line) });
    return { backend: bench.name, warmups: options.warmups, notes: suite.notes ?? [], results, wallMs: performance.now() - start };
  } finally {
    await suite.close();
  }
}

async function main(): Promise<void> {
  const { quick, reps, benches, only, large } = parseOptions();
  const settings = {
    mode: large ? ('large' as const) : quick ? ('quick' as const) : ('full' as const),
    reps,
    memoryReps: Math.min(reps, quick ? 1 : 3),
    warmups: large ? 0 : 1,
    // A large row's trial is one full iteration: one trial per repetition, so its counters (heap
    // growth, longest stall) are one iteration's.
    minSampleMs: large ? 0 : quick ? 100 : 400,
    warmupMs: quick ? 150 : 600,
  };
  const machine = describeMachine();
  const date = new Date().toISOString();
  const start = performance.now();
  const progress = new Progress();
  const backends: BackendReport[] = [];
  const results = large ? 'bench-large' : 'bench';
  const jsonFile = fileURLToPath(new URL(`../results/${results}.json`, import.meta.url));
  const svgFile = fileURLToPath(new URL(`../results/${results}.svg`, import.meta.url));
  let hubReport: RunReport['hub'];
  const snapshot = (): RunReport => ({
    date,
    ...settings,
    machine,
    loadAverageAtEnd: load(),
    wallMs: performance.now() - start,
    backends,
    hub: hubReport,
  });
  for (const bench of benches) {
    const report = await runBench(bench, settings, progress, only);
    backends.push(report);
    process.stdout.write(`\n## ${bench.name}\n\n${renderTable(report)}\n`);
    // Written after every backend, so a later failure keeps what was measured.
    await writeJson(jsonFile, snapshot());
    await writeFile(svgFile, renderSvg(snapshot()));
  }
  // The event hub's cross-process delivery latency, for the backends whose feed crosses processes.
  const hubBackends =
    large || (only !== undefined && !only.has('hub'))
      ? []
      : benches.map((bench) => bench.name).filter((name): name is HubBackend => name === 'redis' || name === 'postgres');
  if (hubBackends.length > 0) {
    const hub = await runHubLatency(hubBackends, quick, (line) => progress.line(line));
    hubReport = hub;
    process.stdout.write(`\n## event hub\n\n${renderHubTable(hub.results, hub.skipped)}\n`);
  }
  const final = snapshot();
  await writeJson(jsonFile, final);
  await writeFile(svgFile, renderSvg(final));
  process.stdout.write(`\n${LEGEND}\n\n${renderHeading(final)}\nwall time ${(final.wallMs / 1000).toFixed(0)} s\n`);
  progress.line(`wrote ${jsonFile} and ${svgFile}`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : messageOf(error)}\n`);
  process.exitCode = 1;
});
