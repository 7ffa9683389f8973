import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { percentiles, spread, type Spread } from './stats.js';

/** One timed run of a workload, prepared outside the timing. */
export interface Trial {
  /** The timed part: performs exactly the workload's operations. */
  run(): Promise<void>;
  /** Checks, untimed, that the run did what it claims (throws otherwise; the whole run fails). */
  verify(): Promise<void>;
  /** Releases what `prepare` created. */
  close(): Promise<void>;
  /** Each operation's duration in ms, recorded during `run` (latency workloads only). */
  latencies?(): readonly number[];
  /** Counts the run kept (retries, successes, bytes…); summed over a repetition's trials. */
  counters?(): Readonly<Record<string, number>>;
  /**
   * The operations `run` performed, when a time bound may end it before the workload's `ops`
   * (time-bounded workloads only); the rate divides this instead of `ops`.
   */
  done?(): number;
}

/** A measurable workload: a fresh, isolated trial per repetition. */
export interface Workload {
  /** Short label for tables, e.g. `exec`, `ioredis EVALSHA`. */
  readonly label: string;
  /** How many operations one trial performs (at most, for a time-bounded trial: see `Trial.done`). */
  readonly ops: number;
  prepare(): Promise<Trial>;
}

/** A side of a comparison that cannot be measured in this run, and why. */
export interface Unavailable {
  readonly label: string;
  readonly unavailable: string;
}

/**
 * What a comparison's figure is:
 * - `throughput`: ops/s (higher is better);
 * - `latency`: ops/s plus p50/p99/p999 of every operation's duration (lower is better);
 * - `memory`: the `rssBytes` counter of a single trial per repetition (lower is better).
 */
export type Kind = 'throughput' | 'latency' | 'memory';

/** A workload measured against the baselines a user would otherwise pick, in the same run. */
export interface Comparison {
  /** Stable key, used in the JSON output. */
  readonly key: string;
  /** Human description of the access pattern. */
  readonly title: string;
  readonly kind: Kind;
  /** Parameters of the pattern (aggregates, concurrency…), copied to the JSON output. */
  readonly params: Readonly<Record<string, number | string>>;
  readonly subject: Workload | Unavailable;
  readonly baselines: readonly (Workload | Unavailable)[];
  /** What the ratio against a baseline must reach, by the baseline's label (from the issues). */
  readonly targets?: Readonly<Record<string, RatioTarget>>;
}

/** A bound on a ratio's median: `atLeast` for throughput (higher is better), `atMost` for cost. */
export interface RatioTarget {
  readonly atLeast?: number;
  readonly atMost?: number;
}

export interface RunOptions {
  /** Measured repetitions per workload (the median is reported). */
  readonly reps: number;
  /** Unmeasured repetitions of each workload before the measured ones, to let the JIT settle. */
  readonly warmups: number;
  /** Least timed duration of one warm-up repetition. */
  readonly warmupMs: number;
  /**
   * Least timed duration of one repetition: a repetition runs fresh trials back to back until
   * their summed run time reaches this, so short trials are not lost in timer and GC noise.
   */
  readonly minSampleMs: number;
  /** Repetitions of memory comparisons (one child process per side each): they vary little. */
  readonly memoryReps: number;
  /** Called once per measured or warm-up repetition of one workload, for progress and ETA. */
  readonly onStep: (line: string) => void;
}

/** Latency percentiles in milliseconds. */
export interface LatencyResult {
  readonly p50: Spread;
  readonly p99: Spread;
  readonly p999: Spread;
}

export interface WorkloadResult {
  readonly label: string;
  readonly ops: number;
  /** Set when this side could not be measured; then no figures. */
  readonly unavailable?: string;
  /** Operations per second, one sample per repetition. */
  readonly opsPerSec?: Spread;
  /** Percentiles over every operation of a repetition, one sample per repetition. */
  readonly latencyMs?: LatencyResult;
  /** Each counter summed over a repetition's trials, one sample per repetition. */
  readonly counters?: Readonly<Record<string, Spread>>;
}

export interface BaselineResult extends WorkloadResult {
  /**
   * subject figure ÷ baseline figure, paired per repetition: ops/s for throughput and latency
   * comparisons, resident bytes for memory ones. Absent when either side is unavailable.
   */
  readonly ratio?: Spread;
  /** subject percentile ÷ baseline percentile, paired per repetition (latency comparisons). */
  readonly latencyRatio?: { readonly p50: Spread; readonly p99: Spread; readonly p999: Spread };
  /** subject heap growth ÷ baseline heap growth (memory comparisons). */
  readonly heapRatio?: Spread;
}

export interface ComparisonResult {
  readonly key: string;
  readonly title: string;
  readonly kind: Kind;
  readonly params: Readonly<Record<string, number | string>>;
  readonly subject: WorkloadResult;
  readonly baselines: readonly BaselineResult[];
  /** The comparison's targets, by baseline label. */
  readonly targets?: Readonly<Record<string, RatioTarget>>;
  /** Wall time of the whole comparison: setup, warm-ups, verification included. */
  readonly wallMs: number;
}

/** True when `side` can be measured. */
export function isAvailable(side: Workload | Unavailable): side is Workload {
  return !('unavailable' in side);
}

/** Runs `total` tasks with at most `concurrency` in flight, in index order. */
export async function runPool(total: number, concurrency: number, task: (index: number) => Promise<unknown>): Promise<void> {
  if (concurrency === 1) {
    // A plain loop: no worker promise between the caller and each operation.
    for (let index = 0; index < total; index++) await task(index);
    return;
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const index = next++;
      if (index >= total) return;
      await task(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
}

/** `runPool`, recording each task's duration (ms) into `into`. */
export async function runTimedPool(
  total: number,
  concurrency: number,
  task: (index: number) => Promise<unknown>,
  into: number[],
): Promise<void> {
  await runPool(total, concurrency, async (index) => {
    const start = performance.now();
    await task(index);
    into.push(performance.now() - start);
  });
}

/** One repetition's figures for one workload. */
interface RepSample {
  readonly opsPerSec: number;
  readonly latency?: readonly [number, number, number];
  readonly counters: Record<string, number>;
}

/** Prepares, times and verifies one trial. */
async function timeTrial(
  workload: Workload,
): Promise<{ ns: number; ops: number; latencies?: readonly number[]; counters?: Readonly<Record<string, number>> }> {
  const trial = await workload.prepare();
  try {
    // No forced GC here: measured, a full collection right before a short trial made the exec
    // path ~3× slower in that trial, which is not how an application runs.
    await yieldToLoop();
    const start = process.hrtime.bigint();
    await trial.run();
    const ns = Number(process.hrtime.bigint() - start);
    await trial.verify();
    return { ns, ops: trial.done?.() ?? workload.ops, latencies: trial.latencies?.(), counters: trial.counters?.() };
  } finally {
    await trial.close();
  }
}

/**
 * One repetition: fresh trials (each exactly the workload's pattern, from an empty store) until
 * their timed parts add up to `minSampleMs` (exactly one trial when `single`).
 */
async function measure(workload: Workload, minSampleMs: number, single: boolean): Promise<RepSample> {
  let totalNs = 0;
  let ops = 0;
  const latencies: number[] = [];
  const counters: Record<string, number> = {};
  do {
    const result = await timeTrial(workload);
    totalNs += result.ns;
    ops += result.ops;
    if (result.latencies !== undefined) for (const value of result.latencies) latencies.push(value);
    for (const [name, value] of Object.entries(result.counters ?? {})) counters[name] = (counters[name] ?? 0) + value;
  } while (!single && totalNs < minSampleMs * 1e6);
  const opsPerSec = ops / (totalNs / 1e9);
  if (latencies.length === 0) return { opsPerSec, counters };
  const [p50, p99, p999] = percentiles(latencies, [50, 99, 99.9]) as [number, number, number];
  return { opsPerSec, latency: [p50, p99, p999], counters };
}

/** The figure a ratio divides, by kind. */
function figure(kind: Kind, sample: RepSample): number {
  if (kind !== 'memory') return sample.opsPerSec;
  const rss = sample.counters.rssBytes;
  if (rss === undefined) throw new Error('a memory workload must count rssBytes');
  return rss;
}

/** How many `onStep` calls `runComparisons` will make: for a progress ETA. */
export function countSteps(comparisons: readonly Comparison[], options: Pick<RunOptions, 'reps' | 'warmups' | 'memoryReps'>): number {
  let steps = 0;
  for (const comparison of comparisons) {
    const sides = [comparison.subject, ...comparison.baselines].filter(isAvailable).length;
    steps += sides * (comparison.kind === 'memory' ? options.memoryReps : options.reps + options.warmups);
  }
  return steps;
}

function summarize(workload: Workload | Unavailable, samples: readonly RepSample[]): WorkloadResult {
  if (!isAvailable(workload)) return { label: workload.label, ops: 0, unavailable: workload.unavailable };
  const latencies = samples.map((s) => s.latency).filter((l): l is readonly [number, number, number] => l !== undefined);
  const names = new Set(samples.flatMap((s) => Object.keys(s.counters)));
  const counters: Record<string, Spread> = {};
  for (const name of names) counters[name] = spread(samples.map((s) => s.counters[name] ?? 0));
  return {
    label: workload.label,
    ops: workload.ops,
    opsPerSec: spread(samples.map((s) => s.opsPerSec)),
    ...(latencies.length === samples.length && latencies.length > 0
      ? {
          latencyMs: {
            p50: spread(latencies.map((l) => l[0])),
            p99: spread(latencies.map((l) => l[1])),
            p999: spread(latencies.map((l) => l[2])),
          },
        }
      : {}),
    ...(names.size > 0 ? { counters } : {}),
  };
}

function rateText(sample: RepSample, kind: Kind): string {
  if (kind === 'memory') return `${((sample.counters.rssBytes ?? 0) / 2 ** 20).toFixed(1)} MiB`;
  const rate = `${Math.round(sample.opsPerSec).toLocaleString('en-US')} ops/s`;
  return sample.latency === undefined ? rate : `${rate}, p99 ${sample.latency[1].toFixed(2)} ms`;
}

/**
 * Measures each comparison: warm-ups first, then `reps` repetitions. Within a repetition every
 * available side runs once, and the order rotates from one repetition to the next, so slow
 * drift of the machine hits all sides alike. Ratios pair the subject with each baseline
 * repetition by repetition.
 */
export async function runComparisons(comparisons: readonly Comparison[], options: RunOptions): Promise<ComparisonResult[]> {
  const results: ComparisonResult[] = [];
  for (const comparison of comparisons) {
    const start = performance.now();
    const sides = [comparison.subject, ...comparison.baselines];
    const live = sides
      .map((side, index) => ({ side, index }))
      .filter((entry): entry is { side: Workload; index: number } => isAvailable(entry.side));
    const single = comparison.kind === 'memory';
    if (!single) {
      for (let w = 1; w <= options.warmups; w++) {
        for (const { side } of live) {
          await measure(side, options.warmupMs, false);
          options.onStep(`${comparison.key} warm-up ${w}/${options.warmups} ${side.label}`);
        }
      }
    }
    const samples: RepSample[][] = sides.map(() => []);
    const reps = single ? options.memoryReps : options.reps;
    for (let rep = 1; rep <= reps; rep++) {
      for (let k = 0; k < live.length; k++) {
        const { side, index } = live[(k + rep - 1) % live.length] as { side: Workload; index: number };
        const sample = await measure(side, options.minSampleMs, single);
        (samples[index] as RepSample[]).push(sample);
        options.onStep(`${comparison.key} rep ${rep}/${reps} ${side.label}: ${rateText(sample, comparison.kind)}`);
      }
    }
    const subjectSamples = samples[0] as RepSample[];
    const subjectLive = isAvailable(comparison.subject);
    results.push({
      key: comparison.key,
      title: comparison.title,
      kind: comparison.kind,
      params: comparison.params,
      subject: summarize(comparison.subject, subjectSamples),
      baselines: comparison.baselines.map((baseline, b) => {
        const baseSamples = samples[b + 1] as RepSample[];
        const result = summarize(baseline, baseSamples);
        if (!subjectLive || !isAvailable(baseline)) return result;
        const pair = (f: (s: RepSample) => number) => spread(subjectSamples.map((s, r) => f(s) / f(baseSamples[r] as RepSample)));
        const withLatency = subjectSamples.every((s) => s.latency) && baseSamples.every((s) => s.latency);
        return {
          ...result,
          ratio: pair((s) => figure(comparison.kind, s)),
          ...(comparison.kind === 'memory' ? { heapRatio: pair((s) => s.counters.heapBytes ?? Number.NaN) } : {}),
          ...(withLatency
            ? {
                latencyRatio: {
                  p50: pair((s) => (s.latency as readonly number[])[0] as number),
                  p99: pair((s) => (s.latency as readonly number[])[1] as number),
                  p999: pair((s) => (s.latency as readonly number[])[2] as number),
                },
              }
            : {}),
        };
      }),
      ...(comparison.targets === undefined ? {} : { targets: comparison.targets }),
      wallMs: Math.round(performance.now() - start),
    });
  }
  return results;
}
